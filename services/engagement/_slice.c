/* One slice of an employee's engagement state, compiled: the worker's per-event hot path.
 *
 * What a slice is and why it exists: services/engagement/partial.py and docs/decisions/0005. This file is the
 * only implementation of the slice's rules (apply, prune) and of its binary layout (encode, decode); Python
 * code reaches it through partial.py. It is C because applying ops and encoding slices in Python cost ~50 us
 * per event, most of the worker's budget (docs/decisions/0006).
 *
 * Binary layout (little-endian except the mark, which is big-endian: a slice's first 8 bytes compare as numbers, which
 * readers use to take the field with the most of a partition's events, docs/decisions/0009): mark Q, count I, top i,
 * base i, flags B; [own i, profile_ms q, completeness d, pilot 4I, dept_ms q, len H + department, len H + name] when
 * flags & 1; then four tables, each present when its flag (2, 4, 8, 16) is set: days ((day - base) * 16 + counter ->
 * count), givers (pseudonym -> day * 2 + other department), receivers (pseudonym -> day), pairs (day << 32 | pseudonym
 * -> count). A table is its entry count I, the key and value type codes (B, H, I or Q: the narrowest that has held
 * them), then the keys, then the values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define SHIFT 4
#define NO_BASE (-(1LL << 31))
#define NEVER_PRUNED (-(1LL << 40))
#define PRUNE_EVERY_DAYS 7
#define OWN_FLAG 1
#define HEAD_SIZE 13  /* count I, top i, base i, flags B */
#define OWN_SIZE 44   /* own i, profile_ms q, completeness d, pilot 4I, dept_ms q */
#define TABLE_HEAD 6  /* entries I, key code, value code */

enum { DAYS, GIVERS, RECEIVERS, PAIRS, NTABLES };
static const int TABLE_FLAG[NTABLES] = {2, 4, 8, 16};
static const char KEY_CODE[NTABLES] = {'H', 'I', 'I', 'Q'};
static const char VALUE_CODE[NTABLES] = {'B', 'H', 'H', 'B'};

/* ---------------------------------------------------------------- tables */

/* A table holds its keys and values as native integers of the widths it stores them in (its type codes): the
 * stored layout in memory, so encoding and decoding are copies, and a scan reads no more than the bytes it
 * compares. The live stream rewrites the same slices many times a second with tables that grew over the day:
 * uint64 arrays there cost a cache miss per few entries when a slice was encoded (docs/decisions/0012). */
typedef struct {
    void *keys;   /* n keys of code_size(kc) bytes; the start of the table's one block */
    void *values; /* n values of code_size(vc) bytes, after cap keys */
    Py_ssize_t n, cap;
    char kc, vc; /* the narrowest type codes that have held the keys / values */
} Table;

static int code_size(char code) {
    switch (code) {
    case 'B': return 1;
    case 'H': return 2;
    case 'I': return 4;
    case 'Q': return 8;
    default: return 0;
    }
}

static char widen(char code, uint64_t value) {
    if (value > 0xFFFFFFFFu) return 'Q';
    if (value > 0xFFFF && code != 'Q') return 'I';
    if (value > 0xFF && code == 'B') return 'H';
    return code;
}

static inline uint64_t load(const void *a, char code, Py_ssize_t i) {
    switch (code) {
    case 'B': return ((const uint8_t *)a)[i];
    case 'H': return ((const uint16_t *)a)[i];
    case 'I': return ((const uint32_t *)a)[i];
    default: return ((const uint64_t *)a)[i];
    }
}

static inline void store(void *a, char code, Py_ssize_t i, uint64_t v) {
    switch (code) {
    case 'B': ((uint8_t *)a)[i] = (uint8_t)v; break;
    case 'H': ((uint16_t *)a)[i] = (uint16_t)v; break;
    case 'I': ((uint32_t *)a)[i] = (uint32_t)v; break;
    default: ((uint64_t *)a)[i] = v;
    }
}

static inline uint64_t key_at(const Table *t, Py_ssize_t i) { return load(t->keys, t->kc, i); }
static inline uint64_t value_at(const Table *t, Py_ssize_t i) { return load(t->values, t->vc, i); }

/* Moves the table into a block for `cap` entries of the given widths (keys, then values at keys + cap: one
 * allocation; cap is a power of two from 8, so the values stay aligned). */
static int table_layout(Table *t, Py_ssize_t cap, char kc, char vc) {
    int ks = code_size(kc);
    uint8_t *block = PyMem_Malloc((size_t)cap * (size_t)(ks + code_size(vc)));
    if (block == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    void *keys = block, *values = block + cap * ks;
    if (t->n && kc == t->kc)
        memcpy(keys, t->keys, (size_t)(t->n * ks));
    else
        for (Py_ssize_t i = 0; i < t->n; i++) store(keys, kc, i, key_at(t, i));
    if (t->n && vc == t->vc)
        memcpy(values, t->values, (size_t)(t->n * code_size(vc)));
    else
        for (Py_ssize_t i = 0; i < t->n; i++) store(values, vc, i, value_at(t, i));
    PyMem_Free(t->keys);
    t->keys = keys;
    t->values = values;
    t->cap = cap;
    t->kc = kc;
    t->vc = vc;
    return 0;
}

/* The capacity for `need` entries: a power of two from 8. */
static Py_ssize_t table_cap(Py_ssize_t need) {
    Py_ssize_t cap = 8;
    while (cap < need) cap *= 2;
    return cap;
}

static int table_reserve(Table *t, Py_ssize_t need) {
    return need <= t->cap ? 0 : table_layout(t, table_cap(need), t->kc, t->vc);
}

/* Widens the table where the key or value does not fit its type codes. */
static int table_fit(Table *t, uint64_t key, uint64_t value) {
    char kc = widen(t->kc, key), vc = widen(t->vc, value);
    if (kc == t->kc && vc == t->vc) return 0;
    return table_layout(t, t->cap ? t->cap : 8, kc, vc);
}

/* Eight keys at a time without a branch per key (half the time of a plain loop on the long tables of a busy
 * day), then the block that holds the key, or the rest, one by one. */
#define FIND_IN(T)                                                                                           \
    do {                                                                                                     \
        const T *k = (const T *)t->keys, want = (T)key;                                                      \
        Py_ssize_t i = t->n;                                                                                 \
        for (; i >= 8; i -= 8) {                                                                             \
            const T *b = k + i - 8;                                                                          \
            if ((b[0] == want) | (b[1] == want) | (b[2] == want) | (b[3] == want) | (b[4] == want) |         \
                (b[5] == want) | (b[6] == want) | (b[7] == want))                                            \
                break;                                                                                       \
        }                                                                                                    \
        for (i--; i >= 0; i--)                                                                               \
            if (k[i] == want) return i;                                                                      \
        return -1;                                                                                           \
    } while (0)

/* Newest entries are at the end and most ops touch recent days and colleagues: search backwards. A key wider
 * than the table's keys is not in it. */
static Py_ssize_t table_find(const Table *t, uint64_t key) {
    if (widen(t->kc, key) != t->kc) return -1;
    switch (t->kc) {
    case 'B': FIND_IN(uint8_t);
    case 'H': FIND_IN(uint16_t);
    case 'I': FIND_IN(uint32_t);
    default: FIND_IN(uint64_t);
    }
}

static int table_append(Table *t, uint64_t key, uint64_t value) {
    if (table_fit(t, key, value) < 0 || table_reserve(t, t->n + 1) < 0) return -1;
    store(t->keys, t->kc, t->n, key);
    store(t->values, t->vc, t->n, value);
    t->n++;
    return 0;
}

static int table_set(Table *t, Py_ssize_t i, uint64_t value) {
    if (table_fit(t, 0, value) < 0) return -1;
    store(t->values, t->vc, i, value);
    return 0;
}

/* Adds `amount` to the entry at i (table_find's answer for key), or appends the key when i < 0. */
static int table_bump(Table *t, Py_ssize_t i, uint64_t key, uint64_t amount) {
    return i < 0 ? table_append(t, key, amount) : table_set(t, i, value_at(t, i) + amount);
}

static int table_add(Table *t, uint64_t key, uint64_t amount) { return table_bump(t, table_find(t, key), key, amount); }

/* Keeps the larger of the stored and the given value. */
static int table_raise_to(Table *t, uint64_t key, uint64_t value) {
    Py_ssize_t i = table_find(t, key);
    if (i < 0) return table_append(t, key, value);
    return value_at(t, i) < value ? table_set(t, i, value) : 0;
}

/* ---------------------------------------------------------------- rules */

typedef struct {
    PyObject_HEAD
    long long keep_days, pair_cap, pair_memory_days;
    long long actions, received, updates; /* counter indexes (scoring.COUNTERS) */
} Rules;

static int Rules_init(Rules *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"keep_days", "pair_cap", "pair_memory_days", "actions", "received", "updates", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LLLLLL", names, &self->keep_days, &self->pair_cap,
                                     &self->pair_memory_days, &self->actions, &self->received, &self->updates))
        return -1;
    if (self->keep_days < 1 || self->pair_cap < 0 || self->pair_memory_days < 1) {
        PyErr_SetString(PyExc_ValueError, "keep_days and pair_memory_days must be >= 1, pair_cap >= 0");
        return -1;
    }
    long long counters[3] = {self->actions, self->received, self->updates};
    for (int i = 0; i < 3; i++)
        if (counters[i] < 0 || counters[i] >= (1 << SHIFT)) {
            PyErr_SetString(PyExc_ValueError, "counter indexes must fit the days-table key");
            return -1;
        }
    return 0;
}

static PyMemberDef Rules_members[] = {
    {"keep_days", T_LONGLONG, offsetof(Rules, keep_days), READONLY, NULL},
    {"pair_cap", T_LONGLONG, offsetof(Rules, pair_cap), READONLY, NULL},
    {"pair_memory_days", T_LONGLONG, offsetof(Rules, pair_memory_days), READONLY, NULL},
    {NULL},
};

static PyTypeObject RulesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "services.engagement._slice.Rules",
    .tp_doc = PyDoc_STR("Rules(keep_days, pair_cap, pair_memory_days, actions, received, updates): what applying "
                        "ops needs from the scoring config."),
    .tp_basicsize = sizeof(Rules),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Rules_init,
    .tp_members = Rules_members,
};

/* ---------------------------------------------------------------- slices */

typedef struct {
    PyObject_HEAD
    long long mark;  /* offset of the newest event in the slice, -1 for none */
    long long count; /* events applied: the sum over slices versions the published figures */
    long long top;   /* newest day with a counter */
    long long base;  /* days-table keys count days from here */
    long long own;   /* newest day of own activity (pair caps are kept for the last few own days) */
    long long profile_ms, dept_ms;
    double completeness;
    long long pilot[4];
    PyObject *department, *name; /* str */
    long long pruned;            /* oldest day kept at the last prune (not stored) */
    char owned; /* stored in this worker's own field of its partition, so a plain HSET updates it (not stored) */
    Table t[NTABLES];
} Slice;

static PyTypeObject SliceType;

static PyObject *empty_str;

static Slice *slice_new(PyTypeObject *type) {
    Slice *self = (Slice *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->mark = self->top = self->own = self->profile_ms = self->dept_ms = -1;
    self->base = NO_BASE;
    self->pruned = NEVER_PRUNED;
    Py_INCREF(empty_str);
    self->department = empty_str;
    Py_INCREF(empty_str);
    self->name = empty_str;
    for (int i = 0; i < NTABLES; i++) {
        self->t[i].kc = KEY_CODE[i];
        self->t[i].vc = VALUE_CODE[i];
    }
    return self;
}

static PyObject *Slice_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "Slice() takes no arguments");
        return NULL;
    }
    return (PyObject *)slice_new(type);
}

static void Slice_dealloc(Slice *self) {
    for (int i = 0; i < NTABLES; i++) {
        PyMem_Free(self->t[i].keys); /* the block holds the values too */
    }
    Py_XDECREF(self->department);
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Decimal text of an op field (ops carry text: docs of scoring.Op). */
static int parse_int(PyObject *text, long long *out) {
    Py_ssize_t n;
    const char *s = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    if (s == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "op fields must be str");
        return -1;
    }
    Py_ssize_t i = 0;
    int negative = n > 0 && s[0] == '-';
    if (negative) i = 1;
    if (i == n || n - i > 18) {
        PyErr_Format(PyExc_ValueError, "op field %R is not an integer", text);
        return -1;
    }
    long long value = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            PyErr_Format(PyExc_ValueError, "op field %R is not an integer", text);
            return -1;
        }
        value = value * 10 + (s[i] - '0');
    }
    *out = negative ? -value : value;
    return 0;
}

static int is_set(PyObject *text) { return PyUnicode_Check(text) && PyUnicode_GET_LENGTH(text) > 0; }

static int is_one(PyObject *text) {
    return PyUnicode_Check(text) && PyUnicode_GET_LENGTH(text) == 1 && PyUnicode_READ_CHAR(text, 0) == '1';
}

/* Day d's days-table key (counter 0), moving the slice's newest day; 0 when d is older than the longest window
 * before it (late: no window can see it any more). */
static int day_key(Slice *self, long long d, long long keep, uint64_t *key) {
    if (d < self->top - keep + 1) return 0;
    if (d > self->top) self->top = d;
    if (self->base == NO_BASE) self->base = d - keep;
    *key = (uint64_t)(d - self->base) << SHIFT;
    return 1;
}

static int add_counter(Slice *self, uint64_t key, PyObject *counter) {
    long long c;
    if (parse_int(counter, &c) < 0) return -1;
    if (c < 0 || c >= (1 << SHIFT)) {
        PyErr_Format(PyExc_ValueError, "counter %lld out of range", c);
        return -1;
    }
    return table_add(&self->t[DAYS], key | (uint64_t)c, 1);
}

/* One op (scoring.Op: kind, day, x, y, z); returns 1 applied, 0 late, -1 error. */
static int apply_op(Slice *self, PyObject *op, const Rules *rules) {
    if (!PyTuple_Check(op) || PyTuple_GET_SIZE(op) < 5 || !PyUnicode_Check(PyTuple_GET_ITEM(op, 0)) ||
        PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(op, 0)) != 1) {
        PyErr_SetString(PyExc_TypeError, "an op is a (kind, day, x, y, z) tuple");
        return -1;
    }
    Py_UCS4 kind = PyUnicode_READ_CHAR(PyTuple_GET_ITEM(op, 0), 0);
    long long d = PyLong_AsLongLong(PyTuple_GET_ITEM(op, 1));
    if (d == -1 && PyErr_Occurred()) return -1;
    PyObject *x = PyTuple_GET_ITEM(op, 2), *y = PyTuple_GET_ITEM(op, 3), *z = PyTuple_GET_ITEM(op, 4);
    long long keep = rules->keep_days, value;
    uint64_t key;
    if (kind == 'd') {
        if (parse_int(x, &value) < 0) return -1;
        if (value >= self->dept_ms) {
            self->dept_ms = value;
            Py_INCREF(y);
            Py_SETREF(self->department, y);
            if (is_set(z)) {
                Py_INCREF(z);
                Py_SETREF(self->name, z);
            }
        }
        return 1;
    }
    if (kind == 'l') {
        if (parse_int(x, &value) < 0) return -1;
        if (value < 0 || value > 2) {
            PyErr_Format(PyExc_ValueError, "pilot counter %lld out of range", value);
            return -1;
        }
        self->pilot[value]++;
        if (is_one(z)) self->pilot[3]++;
        if (d > self->own) self->own = d;
        /* pilot counters are all-time: only the activity mark can be late */
        if (day_key(self, d, keep, &key) && table_add(&self->t[DAYS], key | (uint64_t)rules->actions, 1) < 0)
            return -1;
        return 1;
    }
    if (kind == 'f') {
        if (parse_int(x, &value) < 0) return -1;
        if (value >= self->profile_ms) {
            PyObject *completeness = PyFloat_FromString(y);
            if (completeness == NULL) return -1;
            self->profile_ms = value;
            self->completeness = PyFloat_AS_DOUBLE(completeness);
            Py_DECREF(completeness);
        }
        if (d > self->own) self->own = d;
        if (!day_key(self, d, keep, &key)) return 0;
        return table_add(&self->t[DAYS], key | (uint64_t)rules->updates, 1) < 0 ? -1 : 1;
    }
    if (!day_key(self, d, keep, &key)) return 0;
    if (kind == 'c') {
        if (is_set(x) && add_counter(self, key, x) < 0) return -1;
        if (is_set(z) && add_counter(self, key, z) < 0) return -1;
        if (is_one(y) && d > self->own) self->own = d;
    } else if (kind == 'g') {
        if (d > self->own) self->own = d;
        long long who;
        if (parse_int(y, &who) < 0) return -1;
        int credit = 1;
        if (d >= self->own - rules->pair_memory_days + 1) {
            uint64_t pair = (uint64_t)d << 32 | (uint64_t)who;
            Table *pairs = &self->t[PAIRS];
            Py_ssize_t i = table_find(pairs, pair);
            if (i >= 0 && value_at(pairs, i) >= (uint64_t)rules->pair_cap)
                credit = 0;
            else if (table_bump(pairs, i, pair, 1) < 0)
                return -1;
        }
        if (credit) {
            if (add_counter(self, key, x) < 0) return -1;
            if (is_set(z) && add_counter(self, key, z) < 0) return -1;
        } else if (table_add(&self->t[DAYS], key | (uint64_t)rules->actions, 1) < 0) {
            return -1;
        }
        if (table_raise_to(&self->t[RECEIVERS], (uint64_t)who, (uint64_t)d) < 0) return -1;
    } else if (kind == 'r') {
        long long who, other;
        if (parse_int(x, &who) < 0 || parse_int(y, &other) < 0) return -1;
        if (table_add(&self->t[DAYS], key | (uint64_t)rules->received, 1) < 0) return -1;
        if (table_raise_to(&self->t[GIVERS], (uint64_t)who, (uint64_t)(d * 2 + other)) < 0) return -1;
    }
    return 1;
}

PyDoc_STRVAR(apply_doc, "apply(entries, rules) -> (applied, duplicates, late)\n\n"
                        "Applies (offset, op) pairs in offset order; ops at or below the mark are duplicates.");

/* Applies (offset, op) entries; adds to the three counts. 0 on success, -1 with an exception set. */
static int slice_apply(Slice *self, PyObject *entries_obj, const Rules *rules, Py_ssize_t *applied,
                       Py_ssize_t *duplicates, Py_ssize_t *late) {
    PyObject *entries = PySequence_Fast(entries_obj, "entries must be a sequence of (offset, op)");
    if (entries == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(entries);
    PyObject **items = PySequence_Fast_ITEMS(entries);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *entry = items[i];
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
            PyErr_SetString(PyExc_TypeError, "entries must be (offset, op) tuples");
            goto error;
        }
        long long offset = PyLong_AsLongLong(PyTuple_GET_ITEM(entry, 0));
        if (offset == -1 && PyErr_Occurred()) goto error;
        if (offset <= self->mark) {
            (*duplicates)++;
            continue;
        }
        self->mark = offset;
        self->count++;
        (*applied)++;
        int done = apply_op(self, PyTuple_GET_ITEM(entry, 1), rules);
        if (done < 0) goto error;
        if (done == 0) (*late)++;
    }
    Py_DECREF(entries);
    return 0;
error:
    Py_DECREF(entries);
    return -1;
}

static PyObject *Slice_apply(Slice *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyObject_TypeCheck(args[1], &RulesType)) {
        PyErr_SetString(PyExc_TypeError, "apply(entries, rules)");
        return NULL;
    }
    Py_ssize_t applied = 0, duplicates = 0, late = 0;
    if (slice_apply(self, args[0], (const Rules *)args[1], &applied, &duplicates, &late) < 0) return NULL;
    return Py_BuildValue("(nnn)", applied, duplicates, late);
}

/* Keeps the entries for which keep(key, value, bound) holds, in order. */
typedef int (*Keep)(uint64_t key, uint64_t value, long long bound);

static void table_keep(Table *t, Keep keep, long long bound) {
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < t->n; i++) {
        uint64_t key = key_at(t, i), value = value_at(t, i);
        if (keep(key, value, bound)) {
            store(t->keys, t->kc, j, key);
            store(t->values, t->vc, j, value);
            j++;
        }
    }
    t->n = j;
}

static int keep_day_key(uint64_t key, uint64_t value, long long first) { return (long long)key >= first; }
static int keep_giver(uint64_t key, uint64_t value, long long lo) { return (long long)(value / 2) >= lo; }
static int keep_receiver(uint64_t key, uint64_t value, long long lo) { return (long long)value >= lo; }
static int keep_pair(uint64_t key, uint64_t value, long long lo) { return (long long)(key >> 32) >= lo; }

PyDoc_STRVAR(prune_doc, "prune(rules)\n\n"
                        "Drops days and colleagues that left the longest window, and pair counts older than their "
                        "memory. Only every few days of the slice's newest day: the figures ignore what is older "
                        "anyway, and the scan costs more than the bytes it saves in between.");

static void slice_prune(Slice *self, const Rules *rules) {
    long long lo = self->top - rules->keep_days + 1;
    if (lo < self->pruned + PRUNE_EVERY_DAYS) return;
    self->pruned = lo;
    Keep keeps[NTABLES] = {keep_day_key, keep_giver, keep_receiver, keep_pair};
    long long bounds[NTABLES] = {(lo - self->base) << SHIFT, lo, lo, self->own - rules->pair_memory_days + 1};
    for (int i = 0; i < NTABLES; i++)
        table_keep(&self->t[i], keeps[i], bounds[i]);
}

static PyObject *Slice_prune(Slice *self, PyObject *arg) {
    if (!PyObject_TypeCheck(arg, &RulesType)) {
        PyErr_SetString(PyExc_TypeError, "prune(rules)");
        return NULL;
    }
    slice_prune(self, (const Rules *)arg);
    Py_RETURN_NONE;
}

static void put_le(uint8_t *p, uint64_t v, int size) {
    for (int i = 0; i < size; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int size) {
    uint64_t v = 0;
    for (int i = 0; i < size; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A table's keys or values as stored (little-endian, the table's width), and back. */
static uint8_t *put_array(uint8_t *p, const void *a, char code, Py_ssize_t n) {
    int size = code_size(code);
#if PY_LITTLE_ENDIAN
    memcpy(p, a, (size_t)(n * size));
#else
    for (Py_ssize_t i = 0; i < n; i++) put_le(p + i * size, load(a, code, i), size);
#endif
    return p + n * size;
}

static const uint8_t *get_array(const uint8_t *p, void *a, char code, Py_ssize_t n) {
    int size = code_size(code);
#if PY_LITTLE_ENDIAN
    memcpy(a, p, (size_t)(n * size));
#else
    for (Py_ssize_t i = 0; i < n; i++) store(a, code, i, get_le(p + i * size, size));
#endif
    return p + n * size;
}

static int has_own(const Slice *self) {
    return self->own >= 0 || self->profile_ms >= 0 || self->dept_ms >= 0 || self->pilot[0] || self->pilot[1] ||
           self->pilot[2] || self->pilot[3];
}

static int fits(long long value, long long lo, long long hi, const char *what) {
    if (value < lo || value > hi) {
        PyErr_Format(PyExc_OverflowError, "slice %s %lld out of range", what, value);
        return 0;
    }
    return 1;
}

/* Checks what the layout cannot hold and returns the encoded size, or -1 with an exception set. */
static Py_ssize_t slice_size(Slice *self) {
    if (!fits(self->mark, 0, INT64_MAX, "mark") || !fits(self->count, 0, UINT32_MAX, "count") ||
        !fits(self->top, INT32_MIN, INT32_MAX, "top") || !fits(self->base, INT32_MIN, INT32_MAX, "base"))
        return -1;
    Py_ssize_t size = 8 + HEAD_SIZE;
    if (has_own(self)) {
        Py_ssize_t dlen, nlen;
        if (!fits(self->own, INT32_MIN, INT32_MAX, "own day")) return -1;
        for (int i = 0; i < 4; i++)
            if (!fits(self->pilot[i], 0, UINT32_MAX, "pilot counter")) return -1;
        if (PyUnicode_AsUTF8AndSize(self->department, &dlen) == NULL ||
            PyUnicode_AsUTF8AndSize(self->name, &nlen) == NULL)
            return -1;
        if (!fits(dlen, 0, UINT16_MAX, "department length") || !fits(nlen, 0, UINT16_MAX, "name length"))
            return -1;
        size += OWN_SIZE + 2 + dlen + 2 + nlen;
    }
    for (int i = 0; i < NTABLES; i++)
        if (self->t[i].n) size += TABLE_HEAD + self->t[i].n * (code_size(self->t[i].kc) + code_size(self->t[i].vc));
    return size;
}

static void put_mark(uint8_t *p, long long mark) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)mark >> (8 * (7 - i)));
}

/* Writes the slice at p (slice_size() bytes, checked before); returns the end. */
static uint8_t *slice_write(Slice *self, uint8_t *p) {
    int own = has_own(self);
    put_mark(p, self->mark);
    p += 8;
    int flags = own ? OWN_FLAG : 0;
    for (int i = 0; i < NTABLES; i++)
        if (self->t[i].n) flags |= TABLE_FLAG[i];
    put_le(p, (uint64_t)self->count, 4);
    put_le(p + 4, (uint64_t)self->top, 4);
    put_le(p + 8, (uint64_t)self->base, 4);
    p[12] = (uint8_t)flags;
    p += HEAD_SIZE;
    if (own) {
        Py_ssize_t dlen, nlen;
        const char *department = PyUnicode_AsUTF8AndSize(self->department, &dlen);
        const char *name = PyUnicode_AsUTF8AndSize(self->name, &nlen);
        uint64_t completeness;
        memcpy(&completeness, &self->completeness, 8);
        put_le(p, (uint64_t)self->own, 4);
        put_le(p + 4, (uint64_t)self->profile_ms, 8);
        put_le(p + 12, completeness, 8);
        for (int i = 0; i < 4; i++) put_le(p + 20 + 4 * i, (uint64_t)self->pilot[i], 4);
        put_le(p + 36, (uint64_t)self->dept_ms, 8);
        p += OWN_SIZE;
        put_le(p, (uint64_t)dlen, 2);
        memcpy(p + 2, department, (size_t)dlen);
        p += 2 + dlen;
        put_le(p, (uint64_t)nlen, 2);
        memcpy(p + 2, name, (size_t)nlen);
        p += 2 + nlen;
    }
    for (int i = 0; i < NTABLES; i++) {
        const Table *t = &self->t[i];
        if (!t->n) continue;
        put_le(p, (uint64_t)t->n, 4);
        p[4] = (uint8_t)t->kc;
        p[5] = (uint8_t)t->vc;
        p += TABLE_HEAD;
        p = put_array(p, t->keys, t->kc, t->n);
        p = put_array(p, t->values, t->vc, t->n);
    }
    return p;
}

PyDoc_STRVAR(encode_doc, "encode() -> bytes: the slice as stored (layout at the top of _slice.c).");

static PyObject *Slice_encode(Slice *self, PyObject *unused) {
    Py_ssize_t size = slice_size(self);
    if (size < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) return NULL;
    slice_write(self, (uint8_t *)PyBytes_AS_STRING(out));
    return out;
}

static PyObject *Slice_get_pilot(Slice *self, void *unused) {
    return Py_BuildValue("(LLLL)", self->pilot[0], self->pilot[1], self->pilot[2], self->pilot[3]);
}

static PyObject *Slice_get_department(Slice *self, void *unused) { return Py_NewRef(self->department); }
static PyObject *Slice_get_name(Slice *self, void *unused) { return Py_NewRef(self->name); }

static PyMethodDef Slice_methods[] = {
    {"apply", (PyCFunction)(void (*)(void))Slice_apply, METH_FASTCALL, apply_doc},
    {"prune", (PyCFunction)Slice_prune, METH_O, prune_doc},
    {"encode", (PyCFunction)Slice_encode, METH_NOARGS, encode_doc},
    {NULL},
};

static PyMemberDef Slice_members[] = {
    {"mark", T_LONGLONG, offsetof(Slice, mark), READONLY, NULL},
    {"count", T_LONGLONG, offsetof(Slice, count), READONLY, NULL},
    {"top", T_LONGLONG, offsetof(Slice, top), READONLY, NULL},
    {"base", T_LONGLONG, offsetof(Slice, base), READONLY, NULL},
    {"own", T_LONGLONG, offsetof(Slice, own), READONLY, NULL},
    {"profile_ms", T_LONGLONG, offsetof(Slice, profile_ms), READONLY, NULL},
    {"dept_ms", T_LONGLONG, offsetof(Slice, dept_ms), READONLY, NULL},
    {"completeness", T_DOUBLE, offsetof(Slice, completeness), READONLY, NULL},
    {"owned", T_BOOL, offsetof(Slice, owned), 0,
     "True when Redis holds this slice in the writer's own field (docs/decisions/0009); the write then is a plain "
     "HSET, else SETTLE_SLICES"},
    {NULL},
};

static PyGetSetDef Slice_getset[] = {
    {"pilot", (getter)Slice_get_pilot, NULL, "surveys, workshops, interviews, contributions", NULL},
    {"department", (getter)Slice_get_department, NULL, NULL, NULL},
    {"name", (getter)Slice_get_name, NULL, NULL, NULL},
    {NULL},
};

static PyTypeObject SliceType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "services.engagement._slice.Slice",
    .tp_doc = PyDoc_STR("Slice(): an empty slice; decode(blob) reads a stored one."),
    .tp_basicsize = sizeof(Slice),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Slice_new,
    .tp_dealloc = (destructor)Slice_dealloc,
    .tp_methods = Slice_methods,
    .tp_members = Slice_members,
    .tp_getset = Slice_getset,
};

/* ---------------------------------------------------------------- the worker's write */

static int decimal_len(Py_ssize_t v) {
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static uint8_t *put_decimal(uint8_t *p, Py_ssize_t v) {
    int n = decimal_len(v);
    for (int i = n - 1; i >= 0; i--, v /= 10) p[i] = (uint8_t)('0' + v % 10);
    return p + n;
}

static Py_ssize_t bulk_size(Py_ssize_t len) { return 1 + decimal_len(len) + 2 + len + 2; }

static uint8_t *put_bulk_head(uint8_t *p, Py_ssize_t len) {
    *p++ = '$';
    p = put_decimal(p, len);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static uint8_t *put_bulk(uint8_t *p, const void *data, Py_ssize_t len) {
    p = put_bulk_head(p, len);
    memcpy(p, data, (size_t)len);
    p[len] = '\r';
    p[len + 1] = '\n';
    return p + len + 2;
}

typedef struct {
    Slice *slice;
    PyObject *field;
    Py_ssize_t size;
} Written;

/* One employee's write: the slices it sets, a run of the part's Written entries. */
typedef struct {
    Written *slices;
    Py_ssize_t n;
    PyObject *prefix; /* `update` or `settle` (see apply_one) */
    Py_ssize_t args;  /* arguments of the command: the prefix's, then a field and a slice per written slice */
} Write;

/* One employee's part of a batch: applies each partition's (offset, op) entries to its slice (slots[partition],
 * loaded), prunes, and fills *write with the slices to write (none when nothing applied) and the command they
 * go in: when every written slice is `owned`, `update` (the packed `HSET <state key>` without the array header),
 * else `settle` (`EVALSHA <SETTLE_SLICES> 2 <state key> <gone key>`, likewise). *partitions lists the written
 * ones in argument order (NULL when none); *moved is (before, after) when the department changed. */
static int apply_one(PyObject *update, PyObject *settle, PyObject *slots, PyObject *groups, PyObject *fields,
                     const Rules *rules, Write *write, PyObject **partitions_out, PyObject **moved_out,
                     Py_ssize_t *duplicates, Py_ssize_t *late) {
    if (!PyBytes_Check(update) || !PyBytes_Check(settle) || !PyTuple_Check(slots) || !PyDict_Check(groups)) {
        PyErr_SetString(PyExc_TypeError,
                        "an entry needs (slots: tuple, update: bytes, settle: bytes, ...) and ops by partition: dict");
        return -1;
    }
    Py_ssize_t k = 0, pos = 0;
    PyObject *moved = NULL, *partitions = NULL, *key, *entries;
    while (PyDict_Next(groups, &pos, &key, &entries)) {
        Py_ssize_t partition = PyLong_AsSsize_t(key);
        if (partition == -1 && PyErr_Occurred()) goto error;
        if (partition < 0 || partition >= PyTuple_GET_SIZE(slots) || partition >= PyList_GET_SIZE(fields) ||
            !PyObject_TypeCheck(PyTuple_GET_ITEM(slots, partition), &SliceType) ||
            !PyBytes_Check(PyList_GET_ITEM(fields, partition))) {
            PyErr_Format(PyExc_ValueError, "partition %zd has no loaded slice or no field name", partition);
            goto error;
        }
        Slice *slice = (Slice *)PyTuple_GET_ITEM(slots, partition);
        PyObject *department = Py_NewRef(slice->department);
        Py_ssize_t applied = 0;
        if (slice_apply(slice, entries, rules, &applied, duplicates, late) < 0) {
            Py_DECREF(department);
            goto error;
        }
        if (applied && moved == NULL && department != slice->department) {
            int same = PyUnicode_Compare(department, slice->department);
            if (same == -1 && PyErr_Occurred()) {
                Py_DECREF(department);
                goto error;
            }
            if (same != 0 && (moved = PyTuple_Pack(2, department, slice->department)) == NULL) {
                Py_DECREF(department);
                goto error;
            }
        }
        Py_DECREF(department);
        if (!applied) continue;
        slice_prune(slice, rules);
        Py_ssize_t size = slice_size(slice);
        if (size < 0) goto error;
        write->slices[k].slice = slice;
        write->slices[k].field = PyList_GET_ITEM(fields, partition);
        write->slices[k].size = size;
        if ((partitions == NULL && (partitions = PyList_New(0)) == NULL) || PyList_Append(partitions, key) < 0)
            goto error;
        k++;
    }
    int owned = 1;
    for (Py_ssize_t i = 0; i < k; i++) owned &= write->slices[i].slice->owned;
    write->n = k;
    write->prefix = owned ? update : settle;
    write->args = (owned ? 2 : 5) + 2 * k;
    *partitions_out = partitions;
    *moved_out = moved;
    return 0;
error:
    Py_XDECREF(moved);
    Py_XDECREF(partitions);
    return -1;
}

static Py_ssize_t write_size(const Write *w) {
    Py_ssize_t total = 1 + decimal_len(w->args) + 2 + PyBytes_GET_SIZE(w->prefix);
    for (Py_ssize_t i = 0; i < w->n; i++)
        total += bulk_size(PyBytes_GET_SIZE(w->slices[i].field)) + bulk_size(w->slices[i].size);
    return total;
}

/* The write as one RESP command at p (write_size() bytes); its slices are owned from then on. */
static uint8_t *put_write(uint8_t *p, const Write *w) {
    *p++ = '*';
    p = put_decimal(p, w->args);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, PyBytes_AS_STRING(w->prefix), (size_t)PyBytes_GET_SIZE(w->prefix));
    p += PyBytes_GET_SIZE(w->prefix);
    for (Py_ssize_t i = 0; i < w->n; i++) {
        const Written *x = &w->slices[i];
        x->slice->owned = 1;
        p = put_bulk(p, PyBytes_AS_STRING(x->field), PyBytes_GET_SIZE(x->field));
        p = put_bulk_head(p, x->size);
        p = slice_write(x->slice, p);
        p[0] = '\r';
        p[1] = '\n';
        p += 2;
    }
    return p;
}

/* dirty[bucket] += [now, member] */
static int mark_dirty(PyObject *dirty, PyObject *bucket, PyObject *now, PyObject *member) {
    PyObject *members = PyDict_GetItemWithError(dirty, bucket);
    if (members == NULL) {
        if (PyErr_Occurred()) return -1;
        members = PyList_New(0);
        if (members == NULL) return -1;
        int rc = PyDict_SetItem(dirty, bucket, members);
        Py_DECREF(members); /* the dict holds it */
        if (rc < 0) return -1;
    }
    if (!PyList_Check(members)) {
        PyErr_SetString(PyExc_TypeError, "dirty values must be lists");
        return -1;
    }
    return PyList_Append(members, now) < 0 || PyList_Append(members, member) < 0 ? -1 : 0;
}

PyDoc_STRVAR(write_doc,
             "write(items, entries, fields, rules, now, written, dirty, moved) -> (duplicates, late, commands)\n\n"
             "A part of a batch, one employee after the other: `items` are (employee, ops by source partition) "
             "and `entries` the store's entries of the same employees, (slices by partition, packed "
             "`HSET <state key>` and `EVALSHA <settle> 2 <state key> <gone key>` without their array headers, "
             "home bucket, the id as a RESP argument). Each employee's ops are applied to their slices, which "
             "are pruned; for each employee with a change, (employee, partitions written, in argument order) "
             "goes to `written`, `now` and the id to `dirty[bucket]`, and the write (a plain HSET when every "
             "written slice is owned, else SETTLE_SLICES; then per written slice its field from `fields` and the "
             "new slice) to `commands`, bytes with the part's writes: one RESP command per row added to `written`. "
             "(employee, department before, after) goes to `moved` when the department changed. One call per "
             "part of a batch: the Python around each employee cost more than the slice code itself "
             "(docs/decisions/0006), and one buffer per part instead of one per employee saves an allocation "
             "per write (a slice of the live stream is bigger than pymalloc's blocks).");

static PyObject *write_command(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8 || !PyList_Check(args[0]) || !PyList_Check(args[1]) || !PyList_Check(args[2]) ||
        !PyObject_TypeCheck(args[3], &RulesType) || !PyBytes_Check(args[4]) || !PyList_Check(args[5]) ||
        !PyDict_Check(args[6]) || !PyList_Check(args[7])) {
        PyErr_SetString(PyExc_TypeError,
                        "write(items: list, entries: list, fields: list, rules, now: bytes, written: list, "
                        "dirty: dict, moved: list)");
        return NULL;
    }
    PyObject *items = args[0], *entries = args[1], *fields = args[2], *now = args[4];
    PyObject *written = args[5], *dirty = args[6], *moves = args[7];
    const Rules *rules = (const Rules *)args[3];
    Py_ssize_t n = PyList_GET_SIZE(items), duplicates = 0, late = 0, slots = 0, writes = 0, total = 0;
    if (PyList_GET_SIZE(entries) != n) {
        PyErr_SetString(PyExc_ValueError, "items and entries differ in length");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i), *entry = PyList_GET_ITEM(entries, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 || !PyTuple_Check(entry) ||
            PyTuple_GET_SIZE(entry) != 5 || !PyDict_Check(PyTuple_GET_ITEM(item, 1))) {
            PyErr_SetString(PyExc_TypeError, "items are (employee, ops by partition: dict), entries 5-tuples");
            return NULL;
        }
        slots += PyDict_GET_SIZE(PyTuple_GET_ITEM(item, 1));
    }
    Write *plan = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Write));
    Written *pool = PyMem_Calloc((size_t)(slots ? slots : 1), sizeof(Written));
    if (plan == NULL || pool == NULL) {
        PyMem_Free(plan);
        PyMem_Free(pool);
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *out = NULL;
    for (Py_ssize_t i = 0, used = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i), *entry = PyList_GET_ITEM(entries, i);
        PyObject *employee = PyTuple_GET_ITEM(item, 0), *partitions = NULL, *moved = NULL;
        Write *w = &plan[writes];
        w->slices = pool + used;
        if (apply_one(PyTuple_GET_ITEM(entry, 1), PyTuple_GET_ITEM(entry, 2), PyTuple_GET_ITEM(entry, 0),
                      PyTuple_GET_ITEM(item, 1), fields, rules, w, &partitions, &moved, &duplicates, &late) < 0)
            goto error;
        int rc = 0;
        if (moved != NULL) {
            PyObject *row = PyTuple_Pack(3, employee, PyTuple_GET_ITEM(moved, 0), PyTuple_GET_ITEM(moved, 1));
            rc = row == NULL || PyList_Append(moves, row) < 0 ? -1 : 0;
            Py_XDECREF(row);
        }
        if (rc == 0 && w->n) {
            PyObject *row = PyTuple_Pack(2, employee, partitions);
            rc = row == NULL || PyList_Append(written, row) < 0 ||
                         mark_dirty(dirty, PyTuple_GET_ITEM(entry, 3), now, PyTuple_GET_ITEM(entry, 4)) < 0
                     ? -1
                     : 0;
            Py_XDECREF(row);
            used += w->n;
            total += write_size(w);
            writes++;
        }
        Py_XDECREF(partitions);
        Py_XDECREF(moved);
        if (rc < 0) goto error;
    }
    out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) goto error;
    uint8_t *p = (uint8_t *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < writes; i++) p = put_write(p, &plan[i]);
    PyMem_Free(plan);
    PyMem_Free(pool);
    return Py_BuildValue("(nnN)", duplicates, late, out);
error:
    Py_XDECREF(out);
    PyMem_Free(plan);
    PyMem_Free(pool);
    return NULL;
}

/* ---------------------------------------------------------------- readers */

/* dict[key] = max(dict.get(key), value) */
static int raise_item(PyObject *dict, uint64_t key, uint64_t value) {
    PyObject *k = PyLong_FromUnsignedLongLong(key);
    if (k == NULL) return -1;
    PyObject *current = PyDict_GetItemWithError(dict, k);
    int rc = 0;
    if (current == NULL && PyErr_Occurred()) {
        rc = -1;
    } else if (current == NULL || PyLong_AsUnsignedLongLong(current) < value) {
        PyObject *v = PyLong_FromUnsignedLongLong(value);
        rc = v == NULL ? -1 : PyDict_SetItem(dict, k, v);
        Py_XDECREF(v);
    }
    Py_DECREF(k);
    return rc;
}

static int add_day(PyObject *days, long long day, uint64_t counter, uint64_t value, Py_ssize_t width) {
    PyObject *k = PyLong_FromLongLong(day);
    if (k == NULL) return -1;
    PyObject *counts = PyDict_GetItemWithError(days, k);
    if (counts == NULL) {
        if (PyErr_Occurred() || (counts = PyList_New(width)) == NULL) {
            Py_DECREF(k);
            return -1;
        }
        for (Py_ssize_t i = 0; i < width; i++) PyList_SET_ITEM(counts, i, PyLong_FromLong(0));
        int rc = PyDict_SetItem(days, k, counts);
        Py_DECREF(counts); /* the dict holds it */
        if (rc < 0) {
            Py_DECREF(k);
            return -1;
        }
    }
    Py_DECREF(k);
    PyObject *old = PyList_GET_ITEM(counts, counter);
    PyObject *sum = PyLong_FromUnsignedLongLong(PyLong_AsUnsignedLongLong(old) + value);
    if (sum == NULL) return -1;
    PyList_SET_ITEM(counts, counter, sum);
    Py_DECREF(old);
    return 0;
}

PyDoc_STRVAR(merge_tables_doc,
             "merge_tables(slices, width) -> (days, givers, receivers)\n\n"
             "The tables of an employee's slices added up: days {day: [count per counter]} (`width` counters), "
             "givers {pseudonym: (newest day, from another department)}, receivers {pseudonym: newest day}. "
             "Every read of an employee (the emitter, the query server) does this.");

static PyObject *merge_tables(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "merge_tables(slices, width)");
        return NULL;
    }
    Py_ssize_t width = PyLong_AsSsize_t(args[1]);
    if (width == -1 && PyErr_Occurred()) return NULL;
    if (width < 1 || width > (1 << SHIFT)) {
        PyErr_SetString(PyExc_ValueError, "width must be between 1 and 16");
        return NULL;
    }
    PyObject *parts = PySequence_Fast(args[0], "slices must be a sequence");
    if (parts == NULL) return NULL;
    PyObject *days = PyDict_New(), *givers = PyDict_New(), *receivers = PyDict_New();
    if (days == NULL || givers == NULL || receivers == NULL) goto error;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(parts); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(parts, i);
        if (!PyObject_TypeCheck(item, &SliceType)) {
            PyErr_SetString(PyExc_TypeError, "slices must be Slice objects");
            goto error;
        }
        const Slice *part = (const Slice *)item;
        const Table *t = &part->t[DAYS];
        for (Py_ssize_t j = 0; j < t->n; j++) {
            uint64_t key = key_at(t, j), counter = key & ((1 << SHIFT) - 1);
            if ((Py_ssize_t)counter >= width) {
                PyErr_Format(PyExc_ValueError, "slice has counter %llu, beyond the %zd known", counter, width);
                goto error;
            }
            if (add_day(days, part->base + (long long)(key >> SHIFT), counter, value_at(t, j), width) < 0)
                goto error;
        }
        t = &part->t[GIVERS];
        for (Py_ssize_t j = 0; j < t->n; j++)
            if (raise_item(givers, key_at(t, j), value_at(t, j)) < 0) goto error;
        t = &part->t[RECEIVERS];
        for (Py_ssize_t j = 0; j < t->n; j++)
            if (raise_item(receivers, key_at(t, j), value_at(t, j)) < 0) goto error;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(givers, &pos, &key, &value)) { /* day * 2 + other department -> (day, other) */
        unsigned long long raw = PyLong_AsUnsignedLongLong(value);
        PyObject *pair = Py_BuildValue("(KN)", raw / 2, PyBool_FromLong((long)(raw & 1)));
        if (pair == NULL || PyDict_SetItem(givers, key, pair) < 0) {
            Py_XDECREF(pair);
            goto error;
        }
        Py_DECREF(pair);
    }
    Py_DECREF(parts);
    return Py_BuildValue("(NNN)", days, givers, receivers);
error:
    Py_DECREF(parts);
    Py_XDECREF(days);
    Py_XDECREF(givers);
    Py_XDECREF(receivers);
    return NULL;
}

/* ---------------------------------------------------------------- decode */

static int need(Py_ssize_t at, Py_ssize_t size, Py_ssize_t len) {
    if (at + size > len) {
        PyErr_SetString(PyExc_ValueError, "truncated engagement slice");
        return 0;
    }
    return 1;
}

static PyObject *decode_text(const uint8_t *blob, Py_ssize_t *at, Py_ssize_t len) {
    if (!need(*at, 2, len)) return NULL;
    Py_ssize_t n = (Py_ssize_t)get_le(blob + *at, 2);
    if (!need(*at + 2, n, len)) return NULL;
    PyObject *text = PyUnicode_DecodeUTF8((const char *)blob + *at + 2, n, "strict");
    *at += 2 + n;
    return text;
}

PyDoc_STRVAR(decode_doc, "decode(blob) -> Slice: reads a stored slice (ValueError when it is malformed).");

static PyObject *decode(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *blob = view.buf;
    Py_ssize_t len = view.len, at = 0;
    Slice *self = NULL;
    if (!need(0, 8 + HEAD_SIZE, len)) goto error;
    self = slice_new(&SliceType);
    if (self == NULL) goto error;
    uint64_t mark = 0;
    for (int i = 0; i < 8; i++) mark = mark << 8 | blob[i];
    self->mark = (long long)mark;
    self->count = (long long)get_le(blob + 8, 4);
    self->top = (int32_t)get_le(blob + 12, 4);
    self->base = (int32_t)get_le(blob + 16, 4);
    int flags = blob[20];
    at = 8 + HEAD_SIZE;
    if (flags & OWN_FLAG) {
        if (!need(at, OWN_SIZE, len)) goto error;
        uint64_t completeness = get_le(blob + at + 12, 8);
        self->own = (int32_t)get_le(blob + at, 4);
        self->profile_ms = (long long)get_le(blob + at + 4, 8);
        memcpy(&self->completeness, &completeness, 8);
        for (int i = 0; i < 4; i++) self->pilot[i] = (long long)get_le(blob + at + 20 + 4 * i, 4);
        self->dept_ms = (long long)get_le(blob + at + 36, 8);
        at += OWN_SIZE;
        PyObject *department = decode_text(blob, &at, len);
        if (department == NULL) goto error;
        Py_SETREF(self->department, department);
        PyObject *name = decode_text(blob, &at, len);
        if (name == NULL) goto error;
        Py_SETREF(self->name, name);
    }
    for (int i = 0; i < NTABLES; i++) {
        if (!(flags & TABLE_FLAG[i])) continue;
        if (!need(at, TABLE_HEAD, len)) goto error;
        Table *t = &self->t[i];
        Py_ssize_t n = (Py_ssize_t)get_le(blob + at, 4);
        char kc = (char)blob[at + 4], vc = (char)blob[at + 5];
        int ks = code_size(kc), vs = code_size(vc);
        if (!ks || !vs) {
            PyErr_SetString(PyExc_ValueError, "engagement slice table has an unknown type code");
            goto error;
        }
        at += TABLE_HEAD;
        if (!need(at, n * (ks + vs), len) || table_layout(t, table_cap(n), kc, vc) < 0) goto error;
        get_array(blob + at, t->keys, kc, n);
        get_array(blob + at + n * ks, t->values, vc, n);
        at += n * (ks + vs);
        t->n = n;
    }
    PyBuffer_Release(&view);
    return (PyObject *)self;
error:
    Py_XDECREF(self);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"decode", (PyCFunction)decode, METH_O, decode_doc},
    {"write", (PyCFunction)(void (*)(void))write_command, METH_FASTCALL, write_doc},
    {"merge_tables", (PyCFunction)(void (*)(void))merge_tables, METH_FASTCALL, merge_tables_doc},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "services.engagement._slice",
    .m_doc = "One slice of an employee's engagement state: apply, prune, encode, decode (see partial.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__slice(void) {
    if (PyType_Ready(&SliceType) < 0 || PyType_Ready(&RulesType) < 0) return NULL;
    empty_str = PyUnicode_New(0, 0);
    if (empty_str == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Slice", (PyObject *)&SliceType) < 0 ||
        PyModule_AddObjectRef(m, "Rules", (PyObject *)&RulesType) < 0 || PyModule_AddIntConstant(m, "SHIFT", SHIFT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
