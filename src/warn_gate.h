/* warn_gate.h — one WARN line at most every interval for a condition that
 * can repeat on every request (Redis refusing, or not answering), the next
 * line saying how many were left out. The caller serialises calls with its
 * own lock and logs outside it. */
#ifndef HR_WARN_GATE_H
#define HR_WARN_GATE_H

struct hr_warn_gate {
    int said;                 /* a line was logged, at `at` */
    double at;                /* in the caller's clock */
    unsigned long long quiet; /* occurrences not logged since */
};

/* 1 when a line is due now (*left_out: the occurrences not logged since
 * the last line); 0 when this one is only counted. */
static inline int hr_warn_gate_pass(struct hr_warn_gate *g, double now, double every, unsigned long long *left_out)
{
    if (g->said && now - g->at < every) {
        g->quiet++;
        return 0;
    }
    *left_out = g->quiet;
    g->said = 1;
    g->at = now;
    g->quiet = 0;
    return 1;
}

#endif
