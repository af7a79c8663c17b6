/* sample C: a tiny hash map */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry { char *key; int value; struct entry *next; } entry_t;

static unsigned long hash(const char *s) {
    unsigned long h = 5381;
    int c;
    while ((c = *s++)) h = ((h << 5) + h) + c; /* h * 33 + c */
    return h;
}

int main(int argc, char **argv) {
    entry_t *tab[64] = {0};
    for (int i = 1; i < argc; i++) {
        unsigned long b = hash(argv[i]) % 64;
        entry_t *e = malloc(sizeof *e);
        e->key = strdup(argv[i]); e->value = i; e->next = tab[b]; tab[b] = e;
    }
	if (argc > 1 && tab[hash(argv[1]) % 64]) printf("found %s => %d\n", argv[1], tab[hash(argv[1]) % 64]->value);
    return 0;
}
