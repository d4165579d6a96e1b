/* The batch planner's per-record work: decode an interaction Envelope, validate it, map it to ops.
 *
 * Why C (docs/decisions/0008): in Python every read of a protobuf field builds a new object, and the checks and
 * the mapping to ops cost ~20 µs per event, the worker's largest single cost. Here the Envelope is decoded by
 * protobuf-c (code generated from proto/ at build time, setup.py) into an arena that is reset per record, each
 * field is read once as bytes, and only what the plan keeps becomes a Python object.
 *
 * The rules are the ones `scoring.effects` applies (the plain-Python mapping `reference.py` and the tests use):
 * tests/unit/engagement/test_plan.py checks that both give the same ops, event by event.
 *
 * protobuf-c keeps strings NUL-terminated and drops their length; the arena records every block's size, so a
 * string's exact length (an embedded NUL included) is read back from its block. Every string field of the
 * message is checked to be UTF-8, as the Python runtime does when it parses.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "catalyst/events/v1/envelope.pb-c.h"

typedef Catalyst__Events__V1__Envelope Envelope;
#define CASE(name) CATALYST__EVENTS__V1__ENVELOPE__PAYLOAD_##name
#define NCASES 128
#define DAY_MS 86400000LL
#define ARENA_BLOCK (64 * 1024)
#define HEADER 16 /* bytes before every arena allocation: its requested size (keeps 16-byte alignment) */

/* ---- arena: protobuf-c allocates into it, one reset per record ---- */

typedef struct Block {
    struct Block *next;
    size_t cap, used, pad; /* pad: data starts 32 bytes in, so allocations stay 16-byte aligned */
    char data[];
} Block;

typedef struct {
    Block *head, *base;
} Arena;

static void *arena_alloc(void *ctx, size_t size) {
    Arena *a = ctx;
    size_t need = (HEADER + size + 15) & ~(size_t)15;
    Block *b = a->head;
    if (b->used + need > b->cap) {
        size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        b = malloc(sizeof(Block) + cap);
        if (b == NULL) return NULL;
        b->next = a->head;
        b->cap = cap;
        b->used = 0;
        a->head = b;
    }
    char *p = b->data + b->used;
    b->used += need;
    *(size_t *)p = size;
    return p + HEADER;
}

static void arena_free(void *ctx, void *pointer) {}

static void arena_reset(Arena *a) {
    while (a->head != a->base) {
        Block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    a->base->used = 0;
}

/* A decoded string's length in bytes: its block's size less the NUL protobuf-c appended. */
static Py_ssize_t text_len(const char *s) {
    if (s == NULL || s == protobuf_c_empty_string) return 0;
    return (Py_ssize_t)(*(const size_t *)(s - HEADER)) - 1;
}

typedef struct {
    const char *s;
    Py_ssize_t n;
} Text;

static Text text(const char *s) { return (Text){s, text_len(s)}; }

static int text_eq(Text a, Text b) { return a.n == b.n && memcmp(a.s, b.s, (size_t)a.n) == 0; }

static int is_ascii(Text t) {
    for (Py_ssize_t i = 0; i < t.n; i++)
        if ((unsigned char)t.s[i] >= 0x80) return 0;
    return 1;
}

static int valid_utf8(Text t) {
    if (is_ascii(t)) return 1;
    PyObject *decoded = PyUnicode_DecodeUTF8(t.s, t.n, NULL);
    if (decoded == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(decoded);
    return 1;
}

static Py_ssize_t chars(Text t) {
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < t.n; i++) n += ((unsigned char)t.s[i] & 0xC0) != 0x80;
    return n;
}

static int has_control(Text t) {
    for (Py_ssize_t i = 0; i < t.n; i++)
        if ((unsigned char)t.s[i] < 0x20) return 1;
    return 0;
}

static PyObject *to_str(Text t) {
    if (!is_ascii(t)) return PyUnicode_DecodeUTF8(t.s, t.n, NULL);
    PyObject *s = PyUnicode_New(t.n, 127);
    if (s != NULL) memcpy(PyUnicode_DATA(s), t.s, (size_t)t.n);
    return s;
}

/* Every string field set in the message (nested ones too) is UTF-8, as proto3 requires. */
static int strings_valid(const ProtobufCMessage *m) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const char *member = (const char *)m + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
            *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
            continue;
        size_t n = 1;
        void *const *items = (void *const *)member;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)((const char *)m + f->quantifier_offset);
            items = *(void *const *const *)member;
        }
        for (size_t j = 0; j < n; j++) {
            if (items[j] == NULL) continue;
            if (f->type == PROTOBUF_C_TYPE_STRING ? !valid_utf8(text(items[j])) : !strings_valid(items[j])) return 0;
        }
    }
    return 1;
}

static long long floor_div(long long a, long long b) {
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- the planner ---- */

typedef struct {
    PyObject *type; /* Envelope.type that must come with this payload (str) */
    PyObject *field; /* the payload's field name (str), as metrics name kinds */
    Text type_text;
} Accepted;

typedef struct {
    PyObject_HEAD
    Accepted accepted[NCASES];
    PyObject *pseudonyms; /* dict: employee id -> (pseudonym, its text), shared with scoring.py */
    PyObject *pseudonym_of; /* fills and returns an entry of `pseudonyms` on a miss */
    PyTypeObject *op_type;
    Py_ssize_t max_id;
    PyObject *c_posts, *c_comments, *c_reactions, *c_answers, *c_answers_own, *c_accepted, *c_accepted_own,
        *c_trials, *c_feedback, *c_suggestions, *c_participation;
    ProtobufCAllocator allocator;
    Arena arena;
} Planner;

static PyObject *k_g, *k_r, *k_c, *k_f, *k_l, *k_d, *t_empty, *t_zero, *t_one, *t_two;

static void Planner_dealloc(Planner *self) {
    for (int i = 0; i < NCASES; i++) {
        Py_XDECREF(self->accepted[i].type);
        Py_XDECREF(self->accepted[i].field);
    }
    Py_XDECREF(self->pseudonyms);
    Py_XDECREF(self->pseudonym_of);
    Py_XDECREF(self->op_type);
    PyObject **texts[] = {&self->c_posts,    &self->c_comments,  &self->c_reactions,   &self->c_answers,
                          &self->c_answers_own, &self->c_accepted, &self->c_accepted_own, &self->c_trials,
                          &self->c_feedback, &self->c_suggestions, &self->c_participation};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) Py_XDECREF(*texts[i]);
    if (self->arena.base != NULL) {
        arena_reset(&self->arena);
        free(self->arena.base);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int counter_text(PyObject *counters, const char *name, PyObject **out) {
    PyObject *index = PyDict_GetItemString(counters, name);
    if (index == NULL) {
        PyErr_Format(PyExc_ValueError, "counter %s is not defined", name);
        return -1;
    }
    *out = PyObject_Str(index);
    return *out == NULL ? -1 : 0;
}

static int Planner_init(Planner *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"accepted", "counters", "pseudonyms", "pseudonym_of", "op_type", "max_id", NULL};
    PyObject *accepted, *counters, *pseudonyms, *pseudonym_of, *op_type;
    Py_ssize_t max_id;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!OO!n", names, &PyDict_Type, &accepted, &PyDict_Type,
                                     &counters, &PyDict_Type, &pseudonyms, &pseudonym_of, &PyType_Type, &op_type,
                                     &max_id))
        return -1;
    if (self->arena.base != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Planner is initialised once");
        return -1;
    }
    if (!PyType_IsSubtype((PyTypeObject *)op_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "op_type must be a tuple type");
        return -1;
    }
    PyObject *type, *field;
    Py_ssize_t pos = 0;
    while (PyDict_Next(accepted, &pos, &type, &field)) {
        if (!PyUnicode_Check(type) || !PyUnicode_Check(field)) {
            PyErr_SetString(PyExc_TypeError, "accepted maps type names to payload field names");
            return -1;
        }
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(
            &catalyst__events__v1__envelope__descriptor, PyUnicode_AsUTF8(field));
        if (f == NULL || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->id >= NCASES) {
            PyErr_Format(PyExc_ValueError, "%R is not a payload of Envelope", field);
            return -1;
        }
        Accepted *a = &self->accepted[f->id];
        Py_INCREF(type);
        Py_INCREF(field);
        Py_XSETREF(a->type, type);
        Py_XSETREF(a->field, field);
        Py_ssize_t n;
        a->type_text.s = PyUnicode_AsUTF8AndSize(type, &n);
        a->type_text.n = n;
    }
    if (counter_text(counters, "posts", &self->c_posts) < 0 ||
        counter_text(counters, "comments", &self->c_comments) < 0 ||
        counter_text(counters, "reactions", &self->c_reactions) < 0 ||
        counter_text(counters, "answers", &self->c_answers) < 0 ||
        counter_text(counters, "answers_own", &self->c_answers_own) < 0 ||
        counter_text(counters, "accepted", &self->c_accepted) < 0 ||
        counter_text(counters, "accepted_own", &self->c_accepted_own) < 0 ||
        counter_text(counters, "trials", &self->c_trials) < 0 ||
        counter_text(counters, "feedback", &self->c_feedback) < 0 ||
        counter_text(counters, "suggestions", &self->c_suggestions) < 0 ||
        counter_text(counters, "participation", &self->c_participation) < 0)
        return -1;
    self->pseudonyms = Py_NewRef(pseudonyms);
    self->pseudonym_of = Py_NewRef(pseudonym_of);
    self->op_type = (PyTypeObject *)Py_NewRef(op_type);
    self->max_id = max_id;
    self->arena.base = malloc(sizeof(Block) + ARENA_BLOCK);
    if (self->arena.base == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->arena.base->next = NULL;
    self->arena.base->cap = ARENA_BLOCK;
    self->arena.base->used = 0;
    self->arena.head = self->arena.base;
    self->allocator = (ProtobufCAllocator){arena_alloc, arena_free, &self->arena};
    return 0;
}

/* One batch's plan while it is built. */
typedef struct {
    PyObject *ops, *activity, *forget, *forgotten, *dead;
    PyObject *partition, *offset; /* of the record in hand */
    long long day;
    PyObject *day_obj;
    Py_ssize_t counts[NCASES];
} Batch;

static PyObject *day_object(Batch *b, long long day) {
    if (b->day_obj == NULL || b->day != day) {
        PyObject *obj = PyLong_FromLongLong(day);
        if (obj == NULL) return NULL;
        Py_XSETREF(b->day_obj, obj);
        b->day = day;
    }
    return b->day_obj;
}

/* (pseudonym, its text) of an employee: a new reference (a miss may clear the shared cache). */
static PyObject *pseudonym(Planner *self, PyObject *employee) {
    PyObject *hit = PyDict_GetItemWithError(self->pseudonyms, employee);
    if (hit != NULL) return Py_NewRef(hit);
    if (PyErr_Occurred()) return NULL;
    hit = PyObject_CallOneArg(self->pseudonym_of, employee);
    if (hit != NULL && !(PyTuple_Check(hit) && PyTuple_GET_SIZE(hit) == 2)) {
        Py_DECREF(hit);
        PyErr_SetString(PyExc_TypeError, "pseudonym_of must return (pseudonym, text)");
        return NULL;
    }
    return hit;
}

/* A tuple of atomic values (str, int) or of such tuples can be no part of a reference cycle, so the cyclic
 * collector need not scan it: a batch makes several per event and keeps them until Redis has them, and every
 * collection meanwhile would scan them all (~14 % of the worker's CPU in the steady state, py-spy). */
static PyObject *untracked(PyObject *tuple) {
    if (tuple != NULL) PyObject_GC_UnTrack(tuple);
    return tuple;
}

/* Appends (offset, op) for the employee, grouped by source partition; steals nothing. */
static int add_op(Planner *self, Batch *b, PyObject *employee, PyObject *kind, PyObject *x, PyObject *y,
                  PyObject *z) {
    if (PySet_GET_SIZE(b->forgotten) > 0) {
        int gone = PySet_Contains(b->forgotten, employee);
        if (gone != 0) return gone < 0 ? -1 : 0;
    }
    PyObject *op = self->op_type->tp_alloc(self->op_type, 5);
    if (op == NULL) return -1;
    PyObject *items[5] = {kind, b->day_obj, x, y, z};
    for (int i = 0; i < 5; i++) PyTuple_SET_ITEM(op, i, Py_NewRef(items[i]));
    PyObject_GC_UnTrack(op); /* only str and int inside: no cycle (see untracked) */
    PyObject *entry = untracked(PyTuple_Pack(2, b->offset, op));
    Py_DECREF(op);
    if (entry == NULL) return -1;
    int rc = -1;
    PyObject *by_partition = PyDict_GetItemWithError(b->ops, employee), *entries;
    if (by_partition == NULL) {
        if (PyErr_Occurred() || (by_partition = PyDict_New()) == NULL) goto done;
        int failed = PyDict_SetItem(b->ops, employee, by_partition);
        Py_DECREF(by_partition);
        if (failed) goto done;
    }
    entries = PyDict_GetItemWithError(by_partition, b->partition);
    if (entries == NULL) {
        if (PyErr_Occurred() || (entries = PyList_New(0)) == NULL) goto done;
        int failed = PyDict_SetItem(by_partition, b->partition, entries);
        Py_DECREF(entries);
        if (failed) goto done;
    }
    rc = PyList_Append(entries, entry);
done:
    Py_DECREF(entry);
    return rc;
}

/* activity[(department, day)] |= {pseudonym}: grouped here, so the store queues one SADD per group without a
 * Python loop over the batch's events. */
static int add_activity(Planner *self, Batch *b, Text dept, PyObject *who) {
    if (dept.n == 0) return 0;
    PyObject *d = to_str(dept);
    if (d == NULL) return -1;
    PyObject *key = untracked(PyTuple_Pack(2, d, b->day_obj));
    Py_DECREF(d);
    if (key == NULL) return -1;
    int rc = -1;
    PyObject *members = PyDict_GetItemWithError(b->activity, key);
    if (members == NULL) {
        if (PyErr_Occurred() || (members = PySet_New(NULL)) == NULL) goto done;
        int failed = PyDict_SetItem(b->activity, key, members);
        Py_DECREF(members); /* the dict holds it */
        if (failed) goto done;
    }
    rc = PySet_Add(members, PyTuple_GET_ITEM(who, 0));
done:
    Py_DECREF(key);
    return rc;
}

/* A colleague's interaction (reaction, comment, answer): given by the actor, received by the other party. */
static int interaction(Planner *self, Batch *b, PyObject *actor, PyObject *who, Text other_id, PyObject *counter,
                       PyObject *own, PyObject *other_dept) {
    PyObject *other = to_str(other_id);
    if (other == NULL) return -1;
    PyObject *theirs = pseudonym(self, other);
    int rc = -1;
    if (theirs == NULL) goto done;
    if (add_op(self, b, actor, k_g, counter, PyTuple_GET_ITEM(theirs, 1), own) < 0) goto done;
    rc = add_op(self, b, other, k_r, PyTuple_GET_ITEM(who, 1), other_dept, t_empty);
done:
    Py_XDECREF(theirs);
    Py_DECREF(other);
    return rc;
}

/* The ops of one valid event (scoring.effects, same rules). */
static int effects(Planner *self, Batch *b, const Envelope *env, PyObject *actor, Text actor_id, Text dept,
                   long long ms) {
    Text own_dept = dept, their_dept;
    PyObject *who = NULL, *a = NULL, *c = NULL;
    int rc = -1;
    switch (env->payload_case) {
    case CASE(REACTION_ADDED):
    case CASE(COMMENT_ADDED): {
        int reaction = env->payload_case == CASE(REACTION_ADDED);
        Text author = text(reaction ? env->reaction_added->post_author_id : env->comment_added->post_author_id);
        if (text_eq(author, actor_id)) return 0;
        their_dept = text(reaction ? env->reaction_added->post_author_department_id
                                   : env->comment_added->post_author_department_id);
        int other = own_dept.n && their_dept.n && !text_eq(own_dept, their_dept);
        if ((who = pseudonym(self, actor)) == NULL) return -1;
        if (interaction(self, b, actor, who, author, reaction ? self->c_reactions : self->c_comments, t_empty,
                        other ? t_one : t_zero) < 0)
            goto done;
        break;
    }
    case CASE(POST_CREATED):
    case CASE(QUESTION_ASKED):
        if (add_op(self, b, actor, k_c, self->c_posts, t_one, t_empty) < 0) return -1;
        break;
    case CASE(ANSWER_POSTED): {
        Text asker = text(env->answer_posted->question_author_id);
        if (text_eq(asker, actor_id)) return 0;
        their_dept = text(env->answer_posted->question_author_department_id);
        int same = own_dept.n && text_eq(own_dept, their_dept);
        int other = own_dept.n && their_dept.n && !same;
        if ((who = pseudonym(self, actor)) == NULL) return -1;
        if (interaction(self, b, actor, who, asker, self->c_answers, same ? self->c_answers_own : t_empty,
                        other ? t_one : t_zero) < 0)
            goto done;
        break;
    }
    case CASE(ANSWER_ACCEPTED): {
        Text author = text(env->answer_accepted->answer_author_id);
        if (text_eq(author, actor_id)) return 0;
        int same = own_dept.n && text_eq(own_dept, text(env->answer_accepted->answer_author_department_id));
        if ((a = to_str(author)) == NULL) return -1;
        rc = add_op(self, b, a, k_c, self->c_accepted, t_zero, same ? self->c_accepted_own : t_empty);
        Py_DECREF(a);
        return rc;
    }
    case CASE(PROFILE_UPDATED): {
        PyObject *completeness = PyFloat_FromDouble(env->profile_updated->completeness);
        if (completeness == NULL) return -1;
        c = PyObject_Repr(completeness);
        Py_DECREF(completeness);
        if (c == NULL || (a = PyLong_FromLongLong(ms)) == NULL) goto done;
        Py_SETREF(a, PyObject_Str(a));
        if (a == NULL || add_op(self, b, actor, k_f, a, c, t_empty) < 0) goto done;
        break;
    }
    case CASE(FEATURE_TRIED):
        if (add_op(self, b, actor, k_c, self->c_trials, t_one, t_empty) < 0) return -1;
        break;
    case CASE(FEEDBACK_SUBMITTED): {
        int suggestion = env->feedback_submitted->kind == CATALYST__EVENTS__V1__FEEDBACK_KIND__FEEDBACK_KIND_SUGGESTION;
        if (add_op(self, b, actor, k_c, suggestion ? self->c_suggestions : self->c_feedback, t_one, t_empty) < 0)
            return -1;
        break;
    }
    case CASE(SURVEY_ANSWERED):
        if ((env->survey_answered->pre_launch ? add_op(self, b, actor, k_l, t_zero, t_empty, t_empty)
                                              : add_op(self, b, actor, k_c, self->c_participation, t_one, t_empty)) < 0)
            return -1;
        break;
    case CASE(WORKSHOP_ATTENDED): {
        const Catalyst__Events__V1__WorkshopAttended *w = env->workshop_attended;
        int interview = w->kind == CATALYST__EVENTS__V1__SESSION_KIND__SESSION_KIND_INTERVIEW;
        if ((w->pre_launch ? add_op(self, b, actor, k_l, interview ? t_two : t_one, t_empty,
                                    w->contributed ? t_one : t_empty)
                           : add_op(self, b, actor, k_c, self->c_participation, t_one, t_empty)) < 0)
            return -1;
        break;
    }
    case CASE(EMPLOYEE_REGISTERED): {
        if ((a = PyLong_FromLongLong(ms)) == NULL) return -1;
        Py_SETREF(a, PyObject_Str(a));
        PyObject *d = NULL, *name = NULL;
        if (a != NULL && (d = to_str(dept)) != NULL &&
            (name = to_str(text(env->employee_registered->display_name))) != NULL)
            rc = add_op(self, b, actor, k_d, a, d, name);
        Py_XDECREF(a);
        Py_XDECREF(d);
        Py_XDECREF(name);
        return rc;
    }
    case CASE(EMPLOYEE_FORGOTTEN): {
        int known = PySet_Contains(b->forgotten, actor);
        if (known < 0) return -1;
        if (!known && (PySet_Add(b->forgotten, actor) < 0 || PyList_Append(b->forget, actor) < 0)) return -1;
        if (PyDict_DelItem(b->ops, actor) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
            PyErr_Clear();
        }
        return 0;
    }
    default: /* post_edited, post_deleted, reaction_removed: valid, but they carry no score */
        return 0;
    }
    if (own_dept.n) {
        if (who == NULL && (who = pseudonym(self, actor)) == NULL) goto done;
        if (add_activity(self, b, own_dept, who) < 0) goto done;
    }
    rc = 0;
done:
    Py_XDECREF(who);
    Py_XDECREF(a);
    Py_XDECREF(c);
    return rc;
}

/* Validates a decoded record; returns the dead-letter reason (a new str), or NULL with no error set when valid. */
static PyObject *invalid(Planner *self, const Envelope *env, PyObject *key, long long now_ms,
                         long long max_future_ms, Text *employee) {
    if (!strings_valid(&env->base)) return PyUnicode_FromString("undecodable Envelope: a string field is not valid UTF-8");
    Text type = text(env->type);
    uint32_t payload = env->payload_case;
    const Accepted *expected = payload < NCASES ? &self->accepted[payload] : NULL;
    if (expected == NULL || expected->type == NULL || !text_eq(expected->type_text, type)) {
        PyObject *type_name = to_str(type);
        if (type_name == NULL) return NULL;
        PyObject *reason = NULL;
        const Accepted *named = NULL;
        for (int i = 0; i < NCASES && named == NULL; i++)
            if (self->accepted[i].type != NULL && text_eq(self->accepted[i].type_text, type)) named = &self->accepted[i];
        if (named == NULL) {
            reason = PyUnicode_FromFormat("unknown event type %R", type_name);
        } else {
            const ProtobufCFieldDescriptor *f = payload == CASE(_NOT_SET) ? NULL
                : protobuf_c_message_descriptor_get_field(&catalyst__events__v1__envelope__descriptor, payload);
            PyObject *actual = f == NULL ? Py_NewRef(Py_None) : PyUnicode_FromString(f->name);
            if (actual != NULL) reason = PyUnicode_FromFormat("type %U but payload %R", type_name, actual);
            Py_XDECREF(actual);
        }
        Py_DECREF(type_name);
        return reason;
    }
    if (text(env->event_id).n == 0) return PyUnicode_FromString("event_id is empty");
    *employee = text(env->employee_id);
    if (employee->n == 0 || chars(*employee) > self->max_id)
        return PyUnicode_FromString("employee_id is empty or too long");
    if (has_control(*employee) || has_control(text(env->department_id)))
        return PyUnicode_FromString("employee_id or department_id contains control characters");
    if (payload == CASE(EMPLOYEE_REGISTERED) && has_control(text(env->employee_registered->display_name)))
        return PyUnicode_FromString("employee_registered.display_name contains control characters");
    if (key != Py_None && PyBytes_GET_SIZE(key) > 0) {
        Text k = {PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)};
        if (!text_eq(k, *employee)) {
            int differs = 1;
            if (!valid_utf8(k)) { /* as Python compares: the key decoded with replacement characters */
                PyObject *decoded = PyUnicode_DecodeUTF8(k.s, k.n, "replace"), *id = to_str(*employee);
                if (decoded == NULL || id == NULL) {
                    Py_XDECREF(decoded);
                    Py_XDECREF(id);
                    return NULL;
                }
                differs = PyUnicode_Compare(decoded, id) != 0;
                Py_DECREF(decoded);
                Py_DECREF(id);
            }
            if (differs) return PyUnicode_FromString("record key differs from employee_id");
        }
    }
    long long seconds = env->occurred_at == NULL ? 0 : env->occurred_at->seconds;
    if (seconds <= 0) return PyUnicode_FromString("occurred_at is missing");
    if (seconds > (now_ms + max_future_ms) / 1000) /* seconds * 1000 > now + skew, without overflow */
        if (seconds > LLONG_MAX / 1000 || seconds * 1000 > now_ms + max_future_ms)
            return PyUnicode_FromString("occurred_at is in the future");
    const char *required = NULL, *field = NULL;
    switch (payload) {
#define REQUIRED(CASE_NAME, payload_name, member)                                                         \
    case CASE(CASE_NAME):                                                                                     \
        required = env->payload_name->member, field = #payload_name "." #member;                             \
        break;
        REQUIRED(COMMENT_ADDED, comment_added, post_author_id)
        REQUIRED(REACTION_ADDED, reaction_added, post_author_id)
        REQUIRED(ANSWER_POSTED, answer_posted, question_author_id)
        REQUIRED(ANSWER_ACCEPTED, answer_accepted, answer_author_id)
        REQUIRED(FEATURE_TRIED, feature_tried, feature_id)
        REQUIRED(SURVEY_ANSWERED, survey_answered, survey_id)
        REQUIRED(WORKSHOP_ATTENDED, workshop_attended, session_id)
#undef REQUIRED
    case CASE(PROFILE_UPDATED): {
        double c = env->profile_updated->completeness;
        if (!(c >= 0.0 && c <= 1.0)) return PyUnicode_FromString("profile_updated.completeness must be between 0 and 1");
        break;
    }
    default:
        break;
    }
    if (field != NULL) {
        Text value = text(required);
        if (value.n == 0 || chars(value) > self->max_id) return PyUnicode_FromFormat("%s is empty or too long", field);
    }
    return NULL;
}

static int dead_letter(Batch *b, PyObject *record, PyObject *reason) {
    if (reason == NULL) return -1;
    PyObject *item = PyTuple_Pack(2, record, reason);
    Py_DECREF(reason);
    if (item == NULL) return -1;
    int rc = PyList_Append(b->dead, item);
    Py_DECREF(item);
    return rc;
}

/* One record into the batch: a dead letter, or its ops. Returns the event time to advance the watermark by
 * (0 for none), or -1 on an error. */
static long long plan_record(Planner *self, Batch *b, PyObject *record, long long now_ms, long long max_future_ms) {
    if (!PyTuple_Check(record) || PyTuple_GET_SIZE(record) < 4) {
        PyErr_SetString(PyExc_TypeError, "a record is a (partition, offset, key, value, timestamp_ms) tuple");
        return -1;
    }
    PyObject *key = PyTuple_GET_ITEM(record, 2), *value = PyTuple_GET_ITEM(record, 3);
    if ((key != Py_None && !PyBytes_Check(key)) || (value != Py_None && !PyBytes_Check(value))) {
        PyErr_SetString(PyExc_TypeError, "a record's key and value are bytes or None");
        return -1;
    }
    if (value == Py_None || PyBytes_GET_SIZE(value) == 0)
        return dead_letter(b, record, PyUnicode_FromString("empty record value"));
    arena_reset(&self->arena);
    Envelope *env = catalyst__events__v1__envelope__unpack(&self->allocator, (size_t)PyBytes_GET_SIZE(value),
                                                           (const uint8_t *)PyBytes_AS_STRING(value));
    if (env == NULL) return dead_letter(b, record, PyUnicode_FromString("undecodable Envelope: wire format is corrupt"));
    Text employee = {NULL, 0};
    PyObject *reason = invalid(self, env, key, now_ms, max_future_ms, &employee);
    if (reason != NULL) return dead_letter(b, record, reason);
    if (PyErr_Occurred()) return -1;
    b->counts[env->payload_case]++;
    long long ms = env->occurred_at->seconds * 1000 + floor_div(env->occurred_at->nanos, 1000000);
    b->partition = PyTuple_GET_ITEM(record, 0);
    b->offset = PyTuple_GET_ITEM(record, 1);
    if (day_object(b, floor_div(ms, DAY_MS)) == NULL) return -1;
    PyObject *actor = to_str(employee);
    if (actor == NULL) return -1;
    int rc = effects(self, b, env, actor, employee, text(env->department_id), ms);
    Py_DECREF(actor);
    if (rc < 0) return -1;
    int directory = env->payload_case == CASE(EMPLOYEE_REGISTERED) || env->payload_case == CASE(EMPLOYEE_FORGOTTEN);
    return directory ? 0 : ms;
}

PyDoc_STRVAR(plan_doc,
             "plan(records, now_ms, max_future_ms) -> (ops, activity, forget, dead, counts, newest_ms)\n\n"
             "ops: employee -> source partition -> [(offset, op)] in offset order; activity: (department, day) ->\n"
             "{pseudonym}; forget: employees forgotten, in order; dead: [(record, reason)]; counts: valid events\n"
             "per payload field; newest_ms: the newest event time that moves the clock (directory facts do not).");

static PyObject *Planner_plan(Planner *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "plan(records, now_ms, max_future_ms)");
        return NULL;
    }
    long long now_ms = PyLong_AsLongLong(args[1]), max_future_ms = PyLong_AsLongLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    PyObject *records = PySequence_Fast(args[0], "records must be a sequence");
    if (records == NULL) return NULL;
    Batch b = {PyDict_New(), PyDict_New(), PyList_New(0), PySet_New(NULL), PyList_New(0)};
    PyObject *result = NULL, *counts = NULL;
    long long newest = 0;
    if (b.ops == NULL || b.activity == NULL || b.forget == NULL || b.forgotten == NULL || b.dead == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(records);
    PyObject **items = PySequence_Fast_ITEMS(records);
    for (Py_ssize_t i = 0; i < n; i++) {
        long long ms = plan_record(self, &b, items[i], now_ms, max_future_ms);
        if (ms < 0) goto done;
        if (ms > newest) newest = ms;
    }
    if ((counts = PyDict_New()) == NULL) goto done;
    for (int i = 0; i < NCASES; i++) {
        if (b.counts[i] == 0) continue;
        PyObject *count = PyLong_FromSsize_t(b.counts[i]);
        int failed = count == NULL || PyDict_SetItem(counts, self->accepted[i].field, count) < 0;
        Py_XDECREF(count);
        if (failed) goto done;
    }
    result = Py_BuildValue("(OOOOOL)", b.ops, b.activity, b.forget, b.dead, counts, newest);
done:
    Py_DECREF(records);
    Py_XDECREF(b.ops);
    Py_XDECREF(b.activity);
    Py_XDECREF(b.forget);
    Py_XDECREF(b.forgotten);
    Py_XDECREF(b.dead);
    Py_XDECREF(b.day_obj);
    Py_XDECREF(counts);
    return result;
}

static PyMethodDef Planner_methods[] = {
    {"plan", (PyCFunction)(void (*)(void))Planner_plan, METH_FASTCALL, plan_doc},
    {NULL},
};

static PyTypeObject PlannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "services.engagement._plan.Planner",
    .tp_doc = PyDoc_STR("Planner(accepted, counters, pseudonyms, pseudonym_of, op_type, max_id): plans batches of "
                        "interaction records (see plan)."),
    .tp_basicsize = sizeof(Planner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Planner_init,
    .tp_dealloc = (destructor)Planner_dealloc,
    .tp_methods = Planner_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_plan", "Decodes, validates and maps interaction records to ops (see _plan.c).", -1,
};

static int constant(PyObject **slot, const char *value) {
    *slot = PyUnicode_InternFromString(value);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__plan(void) {
    if (constant(&k_g, "g") < 0 || constant(&k_r, "r") < 0 || constant(&k_c, "c") < 0 || constant(&k_f, "f") < 0 ||
        constant(&k_l, "l") < 0 || constant(&k_d, "d") < 0 || constant(&t_empty, "") < 0 ||
        constant(&t_zero, "0") < 0 || constant(&t_one, "1") < 0 || constant(&t_two, "2") < 0)
        return NULL;
    if (PyType_Ready(&PlannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Planner", (PyObject *)&PlannerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
