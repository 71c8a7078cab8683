/* libFuzzer target: the JSON parser of schema/json_dom.c, against jansson (same.h): whatever
 * the input, both accept it with the same value or both refuse it. The input is also parsed
 * into the same document again (buffers reused), and a jansson value copied into a document
 * (jd_from_json, the Redis path) must read the same. */
#include <stdlib.h>

#include "same.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jd_doc doc;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int rc = same_parse(&doc, text, size);
    if (rc)
        abort();
    json_t *j = same_load(text, size);
    if (j) {
        jd_doc copy = {0};
        if (jd_from_json(&copy, j) || !same_value(copy.nodes, j) ||
            !jd_equal(copy.nodes, doc.nodes, 0) || !jd_equal_json(doc.nodes, j, 0) ||
            jd_hash(copy.nodes, 0) != jd_hash(doc.nodes, 0))
            abort();
        jd_doc_free(&copy);
        json_decref(j);
    }
    jd_doc_trim(&doc);
    return 0;
}
