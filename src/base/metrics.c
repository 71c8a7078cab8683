/*
 * metrics.c: the metrics registry (metrics.h) and its Prometheus text rendering.
 */
#include "base/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct td_metric {
    td_metric_family *f;
    char *values[TD_METRIC_MAX_LABELS];
    char *label_text; /* name="value",... escaped; "" without labels */
    bool hidden;      /* under the registry's lock */
    int64_t v;        /* counter or gauge (atomic) */
    uint64_t *buckets; /* histogram: nbounds + 1 (the last is +Inf), not cumulative (atomic) */
    int64_t sum_ns;    /* atomic */
    td_metric *next;
};

struct td_metric_family {
    td_metrics *m;
    td_metric_type type;
    char *name, *help;
    char *labels[TD_METRIC_MAX_LABELS];
    size_t nlabels;
    double bounds[TD_METRIC_MAX_BUCKETS];
    size_t nbounds;
    td_metric *head, *tail;
    td_metric_family *next;
};

typedef struct collector {
    td_metrics_collect_fn fn;
    void *arg;
} collector;

struct td_metrics {
    pthread_mutex_t mu; /* families and series */
    td_metric_family *head, *tail;
    pthread_rwlock_t clock; /* collectors: renders read, changes write */
    collector *cols;
    size_t ncols, capcols;
};

static const double default_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                        1,      2.5,     5,      10};

int td_metrics_new(td_metrics **out)
{
    td_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    pthread_rwlock_init(&m->clock, NULL);
    *out = m;
    return 0;
}

static void series_free(td_metric *s)
{
    for (size_t i = 0; i < TD_METRIC_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->label_text);
    free(s->buckets);
    free(s);
}

void td_metrics_free(td_metrics *m)
{
    if (!m)
        return;
    for (td_metric_family *f = m->head, *fn; f; f = fn) {
        fn = f->next;
        for (td_metric *s = f->head, *sn; s; s = sn) {
            sn = s->next;
            series_free(s);
        }
        for (size_t i = 0; i < f->nlabels; i++)
            free(f->labels[i]);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->cols);
    pthread_rwlock_destroy(&m->clock);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---------------------------------------------------------------------------------------------
 * Families and series
 */
static bool name_ok(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return false;
    return true;
}

static void family_free(td_metric_family *f)
{
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

td_metric_family *td_metrics_family(td_metrics *m, td_metric_type type, const char *name,
                                    const char *help, const char *labels, const double *bounds,
                                    size_t nbounds)
{
    if (!m || !name_ok(name))
        return NULL;
    pthread_mutex_lock(&m->mu);
    for (td_metric_family *f = m->head; f; f = f->next)
        if (!strcmp(f->name, name)) {
            pthread_mutex_unlock(&m->mu);
            return f;
        }
    pthread_mutex_unlock(&m->mu);

    td_metric_family *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->m = m;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    bool ok = f->name && f->help;
    for (const char *p = labels; ok && p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (f->nlabels == TD_METRIC_MAX_LABELS || !(f->labels[f->nlabels] = strndup(p, n)))
            ok = false;
        else if (!name_ok(f->labels[f->nlabels++]))
            ok = false;
        p = e ? e + 1 : p + n;
    }
    if (type == TD_HISTOGRAM) {
        if (!bounds) {
            bounds = default_bounds;
            nbounds = TD_ARRAY_LEN(default_bounds);
        }
        if (nbounds == 0 || nbounds > TD_METRIC_MAX_BUCKETS)
            ok = false;
        for (size_t i = 0; ok && i < nbounds; i++) {
            if (i > 0 && !(bounds[i] > bounds[i - 1]))
                ok = false;
            f->bounds[i] = bounds[i];
        }
        f->nbounds = nbounds;
    }
    if (!ok) {
        family_free(f);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    /* Another thread may have registered the name meanwhile: keep the first. */
    for (td_metric_family *g = m->head; g; g = g->next)
        if (!strcmp(g->name, name)) {
            pthread_mutex_unlock(&m->mu);
            family_free(f);
            return g;
        }
    if (m->tail)
        m->tail->next = f;
    else
        m->head = f;
    m->tail = f;
    pthread_mutex_unlock(&m->mu);
    return f;
}

/* The length of the well-formed UTF-8 sequence at p (1 to 4), or 0 if there is none. p is
 * NUL-terminated, and a NUL is never a continuation byte. */
static size_t utf8_seq(const uint8_t *p)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    /* The second byte's range excludes overlong forms, surrogates and values past U+10FFFF. */
    uint8_t lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    uint8_t hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (n == 0 || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* A label value as the text format writes it: backslash, quote and newline escaped. The format
 * is UTF-8, so a byte that is not part of a well-formed sequence is written as the four
 * characters \xNN. */
static int append_escaped(td_buf *b, const char *v)
{
    const uint8_t *p = (const uint8_t *)v;
    while (*p) {
        size_t n = utf8_seq(p);
        int rc;
        if (n == 0) {
            char hex[8];
            snprintf(hex, sizeof(hex), "\\\\x%02x", *p);
            rc = td_buf_append(b, hex, 5);
            n = 1;
        } else {
            rc = *p == '\\'   ? td_buf_append(b, "\\\\", 2)
                 : *p == '"'  ? td_buf_append(b, "\\\"", 2)
                 : *p == '\n' ? td_buf_append(b, "\\n", 2)
                              : td_buf_append(b, p, n);
        }
        if (rc)
            return rc;
        p += n;
    }
    return 0;
}

char *td_metrics_label_of(const void *name, size_t n)
{
    const uint8_t *p = name;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += p[i] == 0 || p[i] == '\\' ? 4 : 1;
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == 0 || p[i] == '\\')
            o += snprintf(o, 5, "\\x%02x", p[i]);
        else
            *o++ = (char)p[i];
    }
    *o = 0;
    return out;
}

static int append_labels(td_buf *b, const char *const *names, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        if (i > 0)
            rc = td_buf_append_u8(b, ',');
        if (!rc)
            rc = td_buf_append(b, names[i], strlen(names[i]));
        if (!rc)
            rc = td_buf_append(b, "=\"", 2);
        if (!rc)
            rc = append_escaped(b, values[i] ? values[i] : "");
        if (!rc)
            rc = td_buf_append_u8(b, '"');
        if (rc)
            return rc;
    }
    return 0;
}

static void series_zero(td_metric *s)
{
    __atomic_store_n(&s->v, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->sum_ns, 0, __ATOMIC_RELAXED);
    if (s->buckets)
        for (size_t i = 0; i <= s->f->nbounds; i++)
            __atomic_store_n(&s->buckets[i], 0, __ATOMIC_RELAXED);
}

static bool series_is(const td_metric *s, const char *const *values)
{
    for (size_t i = 0; i < s->f->nlabels; i++)
        if (strcmp(s->values[i], values[i] ? values[i] : ""))
            return false;
    return true;
}

td_metric *td_metric_get(td_metric_family *f, const char *const *values)
{
    if (!f)
        return NULL;
    td_metrics *m = f->m;
    pthread_mutex_lock(&m->mu);
    for (td_metric *s = f->head; s; s = s->next)
        if (series_is(s, values)) {
            if (s->hidden) {
                series_zero(s);
                s->hidden = false;
            }
            pthread_mutex_unlock(&m->mu);
            return s;
        }
    td_metric *s = calloc(1, sizeof(*s));
    bool ok = s != NULL;
    td_buf lt;
    td_buf_init(&lt);
    if (ok) {
        s->f = f;
        for (size_t i = 0; ok && i < f->nlabels; i++)
            ok = (s->values[i] = strdup(values[i] ? values[i] : "")) != NULL;
        ok = ok && append_labels(&lt, (const char *const *)f->labels,
                                 (const char *const *)s->values, f->nlabels) == 0 &&
             td_buf_append_u8(&lt, 0) == 0;
        if (ok && f->type == TD_HISTOGRAM)
            ok = (s->buckets = calloc(f->nbounds + 1, sizeof(*s->buckets))) != NULL;
    }
    if (!ok) {
        td_buf_free(&lt);
        if (s)
            series_free(s);
        pthread_mutex_unlock(&m->mu);
        return NULL;
    }
    s->label_text = (char *)lt.p; /* the buffer passes to the series */
    if (f->tail)
        f->tail->next = s;
    else
        f->head = s;
    f->tail = s;
    pthread_mutex_unlock(&m->mu);
    return s;
}

td_metric *td_metric_get1(td_metric_family *f, const char *value)
{
    const char *v[1] = {value};
    return td_metric_get(f, f && f->nlabels ? v : NULL);
}

void td_metric_remove_first(td_metric_family *f, const char *value)
{
    if (!f || f->nlabels == 0)
        return;
    pthread_mutex_lock(&f->m->mu);
    for (td_metric *s = f->head; s; s = s->next)
        if (!strcmp(s->values[0], value)) {
            s->hidden = true;
            series_zero(s);
        }
    pthread_mutex_unlock(&f->m->mu);
}

/* ---------------------------------------------------------------------------------------------
 * Counting
 */
void td_counter_add(td_metric *s, uint64_t n)
{
    if (s)
        __atomic_add_fetch(&s->v, (int64_t)n, __ATOMIC_RELAXED);
}

void td_gauge_set(td_metric *s, int64_t v)
{
    if (s)
        __atomic_store_n(&s->v, v, __ATOMIC_RELAXED);
}

void td_gauge_add(td_metric *s, int64_t d)
{
    if (s)
        __atomic_add_fetch(&s->v, d, __ATOMIC_RELAXED);
}

int64_t td_metric_value(const td_metric *s)
{
    return s ? __atomic_load_n(&s->v, __ATOMIC_RELAXED) : 0;
}

void td_histogram_observe(td_metric *s, int64_t ns)
{
    if (!s || !s->buckets)
        return;
    if (ns < 0)
        ns = 0;
    double sec = (double)ns / 1e9;
    const td_metric_family *f = s->f;
    size_t i = 0;
    while (i < f->nbounds && sec > f->bounds[i])
        i++;
    __atomic_add_fetch(&s->buckets[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->sum_ns, ns, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------------------------------
 * Collectors
 */
int td_metrics_add_collector(td_metrics *m, td_metrics_collect_fn fn, void *arg)
{
    pthread_rwlock_wrlock(&m->clock);
    if (td_grow(&m->cols, &m->capcols, m->ncols, sizeof(*m->cols), 8) != 0) {
        pthread_rwlock_unlock(&m->clock);
        return -ENOMEM;
    }
    m->cols[m->ncols++] = (collector){fn, arg};
    pthread_rwlock_unlock(&m->clock);
    return 0;
}

void td_metrics_remove_collector(td_metrics *m, td_metrics_collect_fn fn, void *arg)
{
    if (!m)
        return;
    pthread_rwlock_wrlock(&m->clock);
    for (size_t i = 0; i < m->ncols; i++)
        if (m->cols[i].fn == fn && m->cols[i].arg == arg) {
            memmove(&m->cols[i], &m->cols[i + 1], (m->ncols - i - 1) * sizeof(*m->cols));
            m->ncols--;
            break;
        }
    pthread_rwlock_unlock(&m->clock);
}

/* ---------------------------------------------------------------------------------------------
 * Rendering
 */
static void put(td_metrics_out *o, const void *p, size_t n)
{
    if (!o->err)
        o->err = td_buf_append(&o->buf, p, n);
}

static void appendf(td_metrics_out *o, const char *fmt, ...) TD_PRINTF(2, 3);
static void appendf(td_metrics_out *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || o->err)
        return;
    if ((size_t)n < sizeof(tmp))
        return put(o, tmp, (size_t)n);
    if ((o->err = td_buf_reserve(&o->buf, (size_t)n + 1)) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf((char *)o->buf.p + o->buf.len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->buf.len += (size_t)n;
}

static const char *type_name(td_metric_type t)
{
    return t == TD_COUNTER ? "counter" : t == TD_GAUGE ? "gauge" : "histogram";
}

void td_metrics_text_family(td_metrics_out *out, const char *name, const char *help,
                            td_metric_type type)
{
    appendf(out, "# HELP %s ", name);
    /* HELP text escapes backslash and newline. */
    for (help = help ? help : ""; *help; help++)
        put(out, *help == '\\' ? "\\\\" : *help == '\n' ? "\\n" : help,
            *help == '\\' || *help == '\n' ? 2 : 1);
    appendf(out, "\n# TYPE %s %s\n", name, type_name(type));
}

static void append_value(td_metrics_out *out, double v)
{
    if (isnan(v))
        appendf(out, "NaN\n");
    else if (isinf(v))
        appendf(out, v > 0 ? "+Inf\n" : "-Inf\n");
    else if (fabs(v) < 9e15 && v == (double)(int64_t)v)
        appendf(out, "%" PRId64 "\n", (int64_t)v);
    else
        appendf(out, "%.15g\n", v);
}

void td_metrics_text_sample(td_metrics_out *out, const char *name, const char *const *label_names,
                            const char *const *label_values, size_t nlabels, double value)
{
    put(out, name, strlen(name));
    if (nlabels) {
        put(out, "{", 1);
        if (!out->err)
            out->err = append_labels(&out->buf, label_names, label_values, nlabels);
        put(out, "}", 1);
    }
    put(out, " ", 1);
    append_value(out, value);
}

static void render_histogram(td_metrics_out *out, const td_metric_family *f, const td_metric *s)
{
    const char *lt = s->label_text, *sep = *lt ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        cum += __atomic_load_n(&s->buckets[i], __ATOMIC_RELAXED);
        if (i < f->nbounds)
            appendf(out, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", f->name, lt, sep, f->bounds[i],
                    cum);
        else
            appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", f->name, lt, sep, cum);
    }
    /* The count is the +Inf bucket, so that the two always agree in one scrape. */
    double sum = (double)__atomic_load_n(&s->sum_ns, __ATOMIC_RELAXED) / 1e9;
    const char *open = *lt ? "{" : "", *close = *lt ? "}" : "";
    appendf(out, "%s_sum%s%s%s %.9f\n", f->name, open, lt, close, sum);
    appendf(out, "%s_count%s%s%s %" PRIu64 "\n", f->name, open, lt, close, cum);
}

int td_metrics_render(td_metrics *m, td_metrics_out *out)
{
    pthread_mutex_lock(&m->mu);
    for (const td_metric_family *f = m->head; f; f = f->next) {
        td_metrics_text_family(out, f->name, f->help, f->type);
        for (const td_metric *s = f->head; s; s = s->next) {
            if (s->hidden)
                continue;
            if (f->type == TD_HISTOGRAM) {
                render_histogram(out, f, s);
                continue;
            }
            int64_t v = __atomic_load_n(&s->v, __ATOMIC_RELAXED);
            if (*s->label_text)
                appendf(out, "%s{%s} %" PRId64 "\n", f->name, s->label_text, v);
            else
                appendf(out, "%s %" PRId64 "\n", f->name, v);
        }
    }
    pthread_mutex_unlock(&m->mu);
    pthread_rwlock_rdlock(&m->clock);
    for (size_t i = 0; i < m->ncols; i++)
        m->cols[i].fn(m->cols[i].arg, out);
    pthread_rwlock_unlock(&m->clock);
    return out->err;
}
