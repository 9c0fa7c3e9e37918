/* The record walk of engine/records/validator.py in C: the produce path's largest measured cost
 * in Python (about a quarter of the broker's CPU per 64 KiB batch of 100-byte records, issue 11).
 *
 * walk(records, count, offsets_in_sequence) -> None | (problem, a, b)
 *
 * It follows validate_records' record-by-record walk step for step (DefaultRecord.readFrom's
 * order of checks), so it finds the same first problem; the problem codes and the messages they
 * become are validator.py's, the one place they are written. Reads past the end of the records
 * are PREMATURE_EOF, as the Python walk's IndexError. Nothing is allocated per record and the
 * buffer is only read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* validator.py's Problem values */
enum {
    PREMATURE_EOF = 0,
    TRAILING_BYTES = 1,
    VARINT_TOO_LONG = 2,
    VARLONG_TOO_LONG = 3,
    SIZE_SHORT = 4,
    SIZE_MISMATCH = 5,
    OFFSET_DELTA = 6,
    HEADERS_NEGATIVE = 7,
    HEADERS_TOO_MANY = 8,
    HEADER_KEY_NEGATIVE = 9,
};

typedef struct {
    const uint8_t *data;
    int64_t end;
    int problem; /* -1: none yet */
    int64_t a, b;
} Walk;

static int fail(Walk *w, int problem, int64_t a, int64_t b)
{
    w->problem = problem;
    w->a = a;
    w->b = b;
    return -1;
}

/* A zigzag varint of at most 5 bytes, as Java's int; 0, or -1 with w->problem set. */
static int varint(Walk *w, int64_t *pos, int32_t *out)
{
    uint32_t raw = 0;
    for (int shift = 0;; shift += 7) {
        if (*pos >= w->end || *pos < 0)
            return fail(w, PREMATURE_EOF, 0, 0);
        uint8_t byte = w->data[(*pos)++];
        raw |= (uint32_t)(byte & 0x7F) << shift; /* bits past 32 dropped, as Java's int */
        if (byte < 0x80) {
            *out = (int32_t)((raw >> 1) ^ (uint32_t)(-(int32_t)(raw & 1)));
            return 0;
        }
        if (shift + 7 >= 35)
            return fail(w, VARINT_TOO_LONG, 0, 0);
    }
}

/* A varlong of at most 10 bytes; its value is not needed, only where it ends. */
static int skip_varlong(Walk *w, int64_t *pos)
{
    for (int n = 1;; n++) {
        if (*pos >= w->end || *pos < 0)
            return fail(w, PREMATURE_EOF, 0, 0);
        if (w->data[(*pos)++] < 0x80)
            return 0;
        if (n == 10)
            return fail(w, VARLONG_TOO_LONG, 0, 0);
    }
}

/* The record at *pos (DefaultRecord.readFrom); offset_delta: the delta it must have, or -1. */
static int record(Walk *w, int64_t *pos, int64_t offset_delta)
{
    int32_t length, delta, size, headers;
    if (varint(w, pos, &length) < 0)
        return -1;
    int64_t body = *pos;
    if (w->end - *pos < length)
        return fail(w, SIZE_SHORT, length, w->end - *pos);
    *pos += 1; /* attributes: unused in v2, not checked (as Kafka) */
    if (skip_varlong(w, pos) < 0) /* timestampDelta */
        return -1;
    if (varint(w, pos, &delta) < 0)
        return -1;
    if (offset_delta >= 0 && delta != offset_delta)
        return fail(w, OFFSET_DELTA, offset_delta, delta);
    if (varint(w, pos, &size) < 0) /* key, -1 (any negative) for null */
        return -1;
    if (size > 0)
        *pos += size;
    if (varint(w, pos, &size) < 0) /* value */
        return -1;
    if (size > 0)
        *pos += size;
    if (varint(w, pos, &headers) < 0)
        return -1;
    if (headers) {
        if (headers < 0)
            return fail(w, HEADERS_NEGATIVE, headers, 0);
        if (headers > w->end - *pos)
            return fail(w, HEADERS_TOO_MANY, headers, 0);
        for (int32_t i = 0; i < headers; i++) {
            if (varint(w, pos, &size) < 0)
                return -1;
            if (size < 0)
                return fail(w, HEADER_KEY_NEGATIVE, size, 0);
            *pos += size;
            if (varint(w, pos, &size) < 0)
                return -1;
            if (size > 0)
                *pos += size;
        }
    }
    if (*pos - body != length)
        return fail(w, SIZE_MISMATCH, length, *pos - body);
    return 0;
}

static PyObject *walk(PyObject *module, PyObject *args)
{
    Py_buffer buffer;
    Py_ssize_t count;
    int in_sequence;
    if (!PyArg_ParseTuple(args, "y*np:walk", &buffer, &count, &in_sequence))
        return NULL;
    Walk w = {buffer.buf, buffer.len, -1, 0, 0};
    int64_t pos = 0;
    for (Py_ssize_t index = 0; index < count; index++) {
        if (record(&w, &pos, in_sequence ? index : -1) < 0)
            break;
    }
    if (w.problem < 0 && pos != w.end)
        fail(&w, TRAILING_BYTES, 0, 0);
    PyBuffer_Release(&buffer);
    if (w.problem < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(iLL)", w.problem, (long long)w.a, (long long)w.b);
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS,
     "walk(records, count, offsets_in_sequence) -> None | (problem, a, b)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "engine.records._walk", "validator.py's record walk in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
