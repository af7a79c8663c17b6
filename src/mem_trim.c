/* mem_trim.c — glibc keeps what a burst freed (large request bodies, parse
 * trees, 1000 streams' buffers) in its arenas, one per thread that
 * allocated, so RSS stays at the burst's peak long after. Once allocation
 * has been quiet for QUIET_MS and the arenas hold more than TRIM_MIN free
 * bytes, malloc_trim hands the free pages back to the system. Never on a
 * worker: the housekeeping thread calls this, and only when traffic has
 * paused, since trimming locks each arena while it walks it.
 *
 * Reading the arenas (mallinfo2) locks them too, one after the other, for
 * 0.3-0.7 ms each time under load (bench/README.md, session 25): a worker
 * that allocates meanwhile waits. So while the process is busy (more than
 * BUSY_CPU of a core since the last tick) the arenas are not read at all;
 * the burst is known to be going on, and is timed from its end. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "mem_trim.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define QUIET_MS 2000.0          /* in-use bytes steady this long: the burst is over */
#define STEADY_BYTES (1u << 20)  /* ... within this much */
#define TRIM_MIN (4u << 20)      /* less free memory than this is not worth a trim */
#define BUSY_CPU 0.05            /* of one core, since the last tick: traffic is going on */
#define TICK_MS 900.0            /* about one look a second, however often we are called */

static atomic_ulong trims;

void hr_mem_init(void)
{
#if defined(__GLIBC__)
    const char *env = getenv("MALLOC_ARENA_MAX");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (!(env && *env)) mallopt(M_ARENA_MAX, cores > 2 ? (int)cores : 2);
#endif
}

unsigned long hr_mem_trims(void) { return atomic_load(&trims); }

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
/* CPU time of the whole process in ms; -1 when the clock is not there. */
static double process_cpu_ms(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)) return -1;
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

void hr_mem_trim_tick(double now_ms)
{
    static size_t last_used;
    static double steady_since = -1, last_tick = -1, last_cpu = -1;
    static int dirty; /* allocation moved since the last trim */
    if (last_tick >= 0 && now_ms - last_tick < TICK_MS) return;
    double cpu = process_cpu_ms();
    int busy = last_tick >= 0 && cpu >= 0 && last_cpu >= 0 && cpu - last_cpu > BUSY_CPU * (now_ms - last_tick);
    last_tick = now_ms;
    last_cpu = cpu;
    if (busy) {
        steady_since = now_ms;
        dirty = 1;
        return;
    }
    struct mallinfo2 mi = mallinfo2(); /* every arena */
    size_t used = mi.uordblks;
    size_t delta = used > last_used ? used - last_used : last_used - used;
    last_used = used;
    if (delta > STEADY_BYTES || steady_since < 0) {
        steady_since = now_ms;
        dirty = 1;
        return;
    }
    /* Trimmed pages stay counted as free (fordblks): without new activity
     * there is nothing more to hand back. */
    if (!dirty || now_ms - steady_since < QUIET_MS || mi.fordblks < TRIM_MIN) return;
    malloc_trim(0);
    dirty = 0;
    atomic_fetch_add(&trims, 1);
    HR_DEBUG("headroom.memory", "quiet for %.0f ms: freed heap handed back to the system (%.1f MB free in the arenas)",
             now_ms - steady_since, (double)mi.fordblks / 1048576);
}
#else
void hr_mem_trim_tick(double now_ms) { (void)now_ms; }
#endif
