/* json_pool.c — a request body's jansson tree is ~25 small allocations
 * (one per object, its hash table, each member, each string and its text)
 * freed together a moment later, once the body is forwarded. From malloc
 * and free they cost ~6 k instructions per small request, and ~0.9 M for a
 * coding agent's 50 kB turn (2 700 nodes); here each is a pointer bump in a
 * block the thread keeps, and a counter update.
 *
 * Each thread that builds trees gets one BLOCK_BYTES block (mmap'd, kept
 * for the process's life) and bumps through it while hr_json_pool_begin is
 * in force. A node can be freed on any thread. The owner counts what it
 * allocates and frees itself in plain thread-local counters; another
 * thread's free (a compression helper's) finds the block by address and
 * adds to the block's atomic count. Locked operations per node were most
 * of the pool's cost (perf: 15 % of a coding agent's turn), and nearly all
 * frees happen on the owner. Anything not from a block goes to free(). The
 * owner starts its block over when its allocations equal both frees, i.e.
 * every tree it built has been freed. A tree that
 * lives long (or does not fit) costs nothing but the pool's use: the next
 * trees come from malloc until the block is empty again. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include <sys/mman.h>
#include <jansson.h>
#include "asan.h"
#include "json_pool.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MALLOCLIKE_BLOCK /* memcheck sees each node as its own block when it can */
#define VALGRIND_MALLOCLIKE_BLOCK(addr, size, rz, zeroed) ((void)0)
#define VALGRIND_FREELIKE_BLOCK(addr, rz) ((void)0)
#define VALGRIND_MAKE_MEM_NOACCESS(addr, size) ((void)0)
#endif


/* Pages are touched only as far as the largest tree built goes, and stay
 * (RSS) once touched. 1 MB holds the tree of a ~400 kB body, a long coding
 * agent conversation; a larger one continues in malloc. */
#define BLOCK_BYTES (1024 * 1024)
#define MAX_BLOCKS 64 /* threads that build trees: workers, a few helpers, all
                        * started once; past this, threads use malloc */
#define ALIGN 16      /* malloc's alignment */

/* One cache line each, so one block's remote frees do not slow another's. */
struct block {
    _Alignas(64) uintptr_t base;
    uintptr_t end;
    atomic_size_t remote_frees; /* nodes freed by other threads since the start over */
};

static struct block blocks[MAX_BLOCKS];
static atomic_size_t n_blocks;
static pthread_mutex_t grow = PTHREAD_MUTEX_INITIALIZER;
static int installed;

static _Thread_local struct block *mine;
static _Thread_local int no_block; /* mmap failed or the table is full */
static _Thread_local uintptr_t bump;
static _Thread_local int active; /* depth of begin/end */
static _Thread_local size_t allocated, own_frees; /* in `mine` since the start over */

static void *pool_malloc(size_t n)
{
    if (active) {
        size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
        if (need <= mine->end - bump) {
            void *p = (void *)bump;
            bump += need;
            allocated++;
            VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 0);
            return p;
        }
    }
    return malloc(n);
}

static void pool_free(void *ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    if (mine && p >= mine->base && p < mine->end) {
        VALGRIND_FREELIKE_BLOCK(ptr, 0);
        own_frees++;
        return;
    }
    size_t n = atomic_load_explicit(&n_blocks, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        if (p >= blocks[i].base && p < blocks[i].end) {
            VALGRIND_FREELIKE_BLOCK(ptr, 0);
            /* release: what this thread did with the node is done before
             * the owner reuses its bytes (it loads the count with acquire) */
            atomic_fetch_add_explicit(&blocks[i].remote_frees, 1, memory_order_release);
            return;
        }
    }
    free(ptr);
}

void hr_json_pool_install(void)
{
    if (HR_ASAN) return; /* AddressSanitizer should see every node */
    json_set_alloc_funcs(pool_malloc, pool_free);
    installed = 1;
}

static struct block *new_block(void)
{
    void *m = mmap(NULL, BLOCK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    VALGRIND_MAKE_MEM_NOACCESS(m, BLOCK_BYTES);
    struct block *b = NULL;
    pthread_mutex_lock(&grow);
    size_t n = atomic_load_explicit(&n_blocks, memory_order_relaxed);
    if (n < MAX_BLOCKS) {
        b = &blocks[n];
        b->base = (uintptr_t)m;
        b->end = b->base + BLOCK_BYTES;
        atomic_store_explicit(&b->remote_frees, 0, memory_order_relaxed);
        atomic_store_explicit(&n_blocks, n + 1, memory_order_release); /* published whole */
    }
    pthread_mutex_unlock(&grow);
    if (!b) munmap(m, BLOCK_BYTES);
    return b;
}

int hr_json_pool_begin(void)
{
    if (!installed || no_block) return 0;
    if (!mine && !(mine = new_block())) {
        no_block = 1;
        return 0;
    }
    /* Every node freed: none can be freed again, so no other thread
     * touches remote_frees until this generation hands out new ones. */
    if (!active && allocated == own_frees + atomic_load_explicit(&mine->remote_frees, memory_order_acquire)) {
        bump = mine->base;
        allocated = own_frees = 0;
        atomic_store_explicit(&mine->remote_frees, 0, memory_order_relaxed);
    }
    active++;
    return 1;
}

void hr_json_pool_end(void) { active--; }
