"""Scheduler: the broker's periodic tasks (retention, flush.ms, checkpoints), each at its own
interval, run by the event loop when due; the loop sleeps until the earliest deadline of these
and of every service's timers (waiting fetches, group sessions), not by a fixed tick.

Not thread-safe: the event loop alone schedules and runs tasks (Kafka's KafkaScheduler runs them
on threads of its own; here they are short and the log is the loop's).
"""

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class _Task:
    due_ms: int
    sequence: int  # ties run in the order scheduled
    name: str = field(compare=False)
    interval_ms: int = field(compare=False)
    run: Callable[[], object] = field(compare=False)


class Scheduler:
    def __init__(self, time_ms: Callable[[], int]) -> None:
        self._time_ms = time_ms
        self._tasks: list[_Task] = []
        self._sequence = 0

    def schedule(self, name: str, interval_ms: int, run: Callable[[], object]) -> None:
        """Run `run` every interval_ms, the first time one interval from now."""
        self._sequence += 1
        task = _Task(self._time_ms() + interval_ms, self._sequence, name, interval_ms, run)
        heapq.heappush(self._tasks, task)

    def run_due(self) -> list[str]:
        """Run every task whose time has come (each once), then reschedule it; their names."""
        now = self._time_ms()
        due = []
        while self._tasks and self._tasks[0].due_ms <= now:
            due.append(heapq.heappop(self._tasks))
        for task in due:
            task.run()
            # an interval of 0 runs once per turn of the loop, never twice in one, never busy
            task.due_ms = now + max(task.interval_ms, 1)
            heapq.heappush(self._tasks, task)
        return [task.name for task in due]

    def next_deadline_ms(self) -> int | None:
        return self._tasks[0].due_ms if self._tasks else None
