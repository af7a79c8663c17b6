/* mem_trim.h — give freed heap memory back after a burst (see mem_trim.c). */
#ifndef HR_MEM_TRIM_H
#define HR_MEM_TRIM_H

/* Once at start, before any thread: at most one malloc arena per core
 * (unless MALLOC_ARENA_MAX says otherwise), so what a burst frees is not
 * spread over a dozen arenas that each keep their share. */
void hr_mem_init(void);
/* From the housekeeping thread, about once a second. */
void hr_mem_trim_tick(double now_ms);
/* How many times memory was handed back so far. */
unsigned long hr_mem_trims(void);
#endif
