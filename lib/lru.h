/* lru.h — an intrusive doubly linked recency list (head = most recently
 * used), shared by the bounded in-memory stores (CCR, response cache, rate
 * limit keys). Embed a struct hr_lru_node in the entry; get the entry back
 * with HR_LRU_ENTRY. Callers hold their own lock. */
#ifndef HR_LRU_H
#define HR_LRU_H
#include <stddef.h>

struct hr_lru_node {
    struct hr_lru_node *prev, *next;
};

struct hr_lru {
    struct hr_lru_node *head, *tail;
};

#define HR_LRU_ENTRY(node, type, member) ((type *)(void *)((char *)(node) - offsetof(type, member)))

static inline void hr_lru_unlink(struct hr_lru *l, struct hr_lru_node *n)
{
    if (n->prev) n->prev->next = n->next; else l->head = n->next;
    if (n->next) n->next->prev = n->prev; else l->tail = n->prev;
    n->prev = n->next = NULL;
}

static inline void hr_lru_push_front(struct hr_lru *l, struct hr_lru_node *n)
{
    n->next = l->head;
    n->prev = NULL;
    if (l->head) l->head->prev = n;
    l->head = n;
    if (!l->tail) l->tail = n;
}

/* Move an entry to the front (it was just used). */
static inline void hr_lru_touch(struct hr_lru *l, struct hr_lru_node *n)
{
    hr_lru_unlink(l, n);
    hr_lru_push_front(l, n);
}
#endif
