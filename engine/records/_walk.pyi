# engine/records/_walk.c: validator.py's record walk in C
def walk(
    records: bytes | bytearray | memoryview, count: int, offsets_in_sequence: bool, /
) -> tuple[int, int, int] | None: ...
