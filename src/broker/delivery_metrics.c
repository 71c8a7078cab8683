/*
 * delivery_metrics.c: the delivery core's metrics helper (delivery.h): the series of queue
 * groups and Redis consumer groups written at a scrape, one family after the other.
 */
#include "broker/delivery.h"

void delivery_metrics_write(td_metrics_out *out, const delivery_family *fams, size_t nfams,
                            const char *const *label_names, size_t nlabels,
                            const char *const *label_values, const double *vals, size_t nrows)
{
    for (size_t f = 0; f < nfams; f++) {
        td_metrics_text_family(out, fams[f].name, fams[f].help, fams[f].type);
        for (size_t i = 0; i < nrows; i++) {
            const char *const *lv = &label_values[i * nlabels];
            if (nlabels && (!lv[0] || !lv[0][0]))
                continue;
            td_metrics_text_sample(out, fams[f].name, label_names, lv, nlabels,
                                   vals[i * nfams + f]);
        }
    }
}
