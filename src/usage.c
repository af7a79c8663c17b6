/* usage.c — adding up the usage of several upstream rounds. */
#include "usage.h"

void hr_usage_add(struct hr_usage *to, const struct hr_usage *u)
{
    to->seen |= u->seen;
    to->input_tokens += u->input_tokens;
    to->output_tokens += u->output_tokens;
    to->reasoning_tokens += u->reasoning_tokens;
    to->cache_read_tokens += u->cache_read_tokens;
    to->cache_write_tokens += u->cache_write_tokens;
    to->cache_write_5m_tokens += u->cache_write_5m_tokens;
    to->cache_write_1h_tokens += u->cache_write_1h_tokens;
}
