/* t/media_size_test.c — a base64 PDF's pages (lib/media_size.c), and so
 * what it counts (1,500 tokens a page, lib/media_tokens.c): plain files,
 * incrementally updated ones (a body appended after %%EOF whose objects
 * replace earlier ones of the same number: each page counts once, as its
 * last version; a page the update deleted not at all), pages in object
 * streams, the page tree's odd shapes, and bad input. The PDFs are written
 * here, byte for byte. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <zlib.h>
#include "media_size.h"
#include "media_tokens.h"
#include "tap.h"

/* A PDF being written: its bytes and where each object starts (for the
 * xref sections, as a writer would). */
struct pdf {
    char p[16384];
    size_t n;
    size_t off[32];
};

__attribute__((format(printf, 2, 3))) static void put(struct pdf *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(d->p + d->n, sizeof d->p - d->n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= sizeof d->p - d->n) {
        printf("Bail out! a test PDF outgrew its buffer\n");
        exit(1);
    }
    d->n += (size_t)w;
}

static void obj(struct pdf *d, int num, const char *body)
{
    d->off[num] = d->n;
    put(d, "%d 0 obj\n%s\nendobj\n", num, body);
}

/* An xref section for objects `nums` and free entries for objects `freed`
 * (0 ends each list; NULL: none), its trailer naming object `root` and
 * %%EOF; returns where the section starts (the next update's /Prev). */
static size_t xref_free(struct pdf *d, const int *nums, const int *freed, int size, size_t prev, int root)
{
    size_t at = d->n;
    put(d, "xref\n0 1\n%010d 65535 f \n", freed ? freed[0] : 0);
    for (const int *k = nums; *k; k++)
        put(d, "%d 1\n%010zu 00000 n \n", *k, d->off[*k]);
    for (const int *k = freed; k && *k; k++) /* each links to the next free one, the last to 0 */
        put(d, "%d 1\n%010d 00001 f \n", *k, k[1]);
    put(d, "trailer\n<< /Size %d /Root %d 0 R", size, root);
    if (prev) put(d, " /Prev %zu", prev);
    put(d, " >>\nstartxref\n%zu\n%%%%EOF\n", at);
    return at;
}

static size_t xref(struct pdf *d, const int *nums, int size, size_t prev)
{
    return xref_free(d, nums, NULL, size, prev, 1);
}

static const char page[] = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 9 0 R >>";

/* %PDF-1.4 with three pages, objects 3, 4 and 5. */
static size_t three_pages(struct pdf *d)
{
    d->n = 0;
    put(d, "%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n");
    obj(d, 1, "<< /Type /Catalog /Pages 2 0 R >>");
    obj(d, 2, "<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >>");
    obj(d, 3, page);
    obj(d, 4, page);
    obj(d, 5, page);
    obj(d, 9, "<< /Length 35 >>\nstream\nBT /F1 12 Tf 72 712 Td (Hi) Tj ET\nendstream");
    static const int all[] = {1, 2, 3, 4, 5, 9, 0};
    return xref(d, all, 10, 0);
}

static char *b64(const char *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(4 * (n / 3 + 1) + 1), *w = o;
    if (!o) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)p[i] << 16 | (i + 1 < n ? (uint32_t)(unsigned char)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? (unsigned char)p[i + 2] : 0);
        *w++ = a[v >> 18 & 63];
        *w++ = a[v >> 12 & 63];
        *w++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *w++ = i + 2 < n ? a[v & 63] : '=';
    }
    *w = '\0';
    return o;
}

static uint64_t pages_of(const char *p, size_t n)
{
    char *s = b64(p, n);
    uint64_t pages = hr_media_pdf_pages(s, strlen(s));
    free(s);
    return pages;
}

/* What an Anthropic document block holding the PDF counts. */
static uint64_t document_tokens(const struct pdf *d)
{
    char *s = b64(d->p, d->n);
    json_t *block = json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "document", "source", "type", "base64", "media_type",
                              "application/pdf", "data", s);
    uint64_t tokens = 0;
    if (!hr_media_anthropic_data_tokens(block, "source", &tokens)) tokens = 0;
    json_decref(block);
    free(s);
    return tokens;
}

/* An object stream (deflated) holding objects nums[0..k) with bodies
 * bodies[0..k), as object `num`. */
static void object_stream(struct pdf *d, int num, const int *nums, const char *const *bodies, int k)
{
    char text[4096], head[256];
    size_t tl = 0, hl = 0;
    for (int i = 0; i < k; i++) {
        hl += (size_t)snprintf(head + hl, sizeof head - hl, "%d %zu ", nums[i], tl);
        tl += (size_t)snprintf(text + tl, sizeof text - tl, "%s\n", bodies[i]);
    }
    char all[4352];
    int al = snprintf(all, sizeof all, "%s%s", head, text);
    unsigned char z[4352];
    uLongf zl = sizeof z;
    if (al < 0 || (size_t)al >= sizeof all || compress(z, &zl, (const unsigned char *)all, (uLong)al) != Z_OK) {
        printf("Bail out! cannot build an object stream\n");
        exit(1);
    }
    d->off[num] = d->n;
    put(d, "%d 0 obj\n<< /Type /ObjStm /N %d /First %zu /Filter /FlateDecode /Length %lu >>\nstream\n", num, k, hl,
        (unsigned long)zl);
    if (d->n + zl >= sizeof d->p) {
        printf("Bail out! a test PDF outgrew its buffer\n");
        exit(1);
    }
    memcpy(d->p + d->n, z, zl);
    d->n += zl;
    put(d, "\nendstream\nendobj\n");
}

/* PDF 1.5's cross-reference stream (object `num`, deflated, /W [1 4 2]),
 * the trailer too: entries ent[i] = {object, type, field 2, field 3}, type
 * 1 at the offset the object was written at, type 2 member field 3 of
 * object stream field 2, type 0 freed; returns where it starts. */
static size_t xref_stream(struct pdf *d, int num, const int (*ent)[4], int k, int size, size_t prev)
{
    unsigned char raw[256], z[512];
    char index[256];
    size_t il = 0;
    d->off[num] = d->n;
    for (int i = 0; i < k; i++) {
        uint32_t f2 = ent[i][1] == 1 ? (uint32_t)d->off[ent[i][0]] : (uint32_t)ent[i][2];
        unsigned char *e = raw + 7 * i;
        e[0] = (unsigned char)ent[i][1];
        e[1] = (unsigned char)(f2 >> 24), e[2] = (unsigned char)(f2 >> 16), e[3] = (unsigned char)(f2 >> 8);
        e[4] = (unsigned char)f2;
        e[5] = (unsigned char)(ent[i][3] >> 8), e[6] = (unsigned char)ent[i][3];
        il += (size_t)snprintf(index + il, sizeof index - il, "%s%d 1", i ? " " : "", ent[i][0]);
    }
    uLongf zl = sizeof z;
    if (k * 7 > (int)sizeof raw || compress(z, &zl, raw, (uLong)(7 * k)) != Z_OK) {
        printf("Bail out! cannot build an xref stream\n");
        exit(1);
    }
    put(d, "%d 0 obj\n<< /Type /XRef /Size %d /Index [%s] /W [1 4 2] /Root 1 0 R", num, size, index);
    if (prev) put(d, " /Prev %zu", prev);
    put(d, " /Filter /FlateDecode /Length %lu >>\nstream\n", (unsigned long)zl);
    if (d->n + zl >= sizeof d->p) {
        printf("Bail out! a test PDF outgrew its buffer\n");
        exit(1);
    }
    memcpy(d->p + d->n, z, zl);
    d->n += zl;
    put(d, "\nendstream\nendobj\nstartxref\n%zu\n%%%%EOF\n", d->off[num]);
    return d->off[num];
}

static void plain_and_updated(void)
{
    struct pdf d;
    size_t prev = three_pages(&d);
    is_int(pages_of(d.p, d.n), 3, "a 3-page PDF: 3 pages");
    is_int(document_tokens(&d), 4500, "... a document block of it counts 4,500 tokens");

    /* Incremental update: page 4 rotated, written again after %%EOF. */
    obj(&d, 4, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Rotate 90 /Contents 9 0 R >>");
    static const int upd[] = {4, 0};
    prev = xref(&d, upd, 10, prev);
    is_int(pages_of(d.p, d.n), 3, "a page replaced by an incremental update: still 3 pages (counted 4)");
    is_int(document_tokens(&d), 4500, "... and 4,500 tokens (counted 6,000)");

    /* A second update replaces the same page again and adds page 6. */
    obj(&d, 4, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Rotate 180 /Contents 9 0 R >>");
    obj(&d, 6, page);
    obj(&d, 2, "<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R 6 0 R] /Count 4 >>");
    static const int upd2[] = {2, 4, 6, 0};
    xref(&d, upd2, 10, prev);
    is_int(pages_of(d.p, d.n), 4, "updated twice, a page added: 4 pages (counted 6)");

    /* The same as a data: URL, with line breaks in the base64. */
    char *s = b64(d.p, d.n);
    size_t sl = strlen(s);
    char *u = malloc(sl + sl / 76 + 64);
    if (u) {
        static const char url[] = "data:application/pdf;base64,";
        memcpy(u, url, sizeof url - 1);
        size_t k = sizeof url - 1;
        for (size_t i = 0; i < sl; i++) {
            u[k++] = s[i];
            if (i % 76 == 75) u[k++] = '\n';
        }
        u[k] = '\0';
        is_int(hr_media_pdf_pages(u, k), 4, "as a data: URL with line breaks: 4 pages");
    }
    free(u);
    free(s);

    /* A content stream whose text reads like a page object is not one. */
    three_pages(&d);
    obj(&d, 9, "<< /Length 44 >>\nstream\n(7 0 obj << /Type /Page >> endobj) Tj\nendstream");
    static const int upd3[] = {9, 0};
    xref(&d, upd3, 10, 0);
    is_int(pages_of(d.p, d.n), 3, "an object header inside a stream's data is not an object");
}

static void in_object_streams(void)
{
    /* PDF 1.5: the catalog plain, the pages tree and pages in an object stream. */
    struct pdf d;
    d.n = 0;
    put(&d, "%%PDF-1.5\n");
    obj(&d, 1, "<< /Type /Catalog /Pages 2 0 R >>");
    static const int nums[] = {2, 3, 4};
    const char *const bodies[] = {"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>", page, page};
    object_stream(&d, 7, nums, bodies, 3);
    static const int all[] = {1, 7, 0};
    size_t prev = xref(&d, all, 10, 0);
    is_int(pages_of(d.p, d.n), 2, "pages in an object stream: 2");
    /* An update writes page 3 again as a plain object. */
    obj(&d, 3, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Rotate 90 >>");
    static const int upd[] = {3, 0};
    prev = xref(&d, upd, 10, prev);
    is_int(pages_of(d.p, d.n), 2, "one of them replaced by a plain object: 2 (counted 1)");
    /* And a later object stream replaces page 4 and adds page 5. */
    static const int nums2[] = {4, 5, 2};
    const char *const bodies2[] = {page, page, "<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >>"};
    object_stream(&d, 8, nums2, bodies2, 3);
    static const int upd2[] = {8, 0};
    xref(&d, upd2, 10, prev);
    is_int(pages_of(d.p, d.n), 3, "a second object stream replacing one and adding one: 3");
}

/* An update deleting a page: the page tree of the last trailer's /Root is
 * what a reader (and the provider, billing pages) takes, not every page
 * object left in the file. */
static void deleted_pages(void)
{
    struct pdf d;
    /* As a writer deletes page 5: a new page tree without it, and the
     * update's xref frees object 5. */
    size_t prev = three_pages(&d);
    obj(&d, 2, "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>");
    static const int upd[] = {2, 0}, gone[] = {5, 0};
    xref_free(&d, upd, gone, 10, prev, 1);
    is_int(pages_of(d.p, d.n), 2, "a page deleted by an update (freed, out of /Kids): 2 pages (counted 3)");
    is_int(document_tokens(&d), 3000, "... and 3,000 tokens (counted 4,500)");

    /* Dropped from /Kids, its object left as it was (no free entry). */
    prev = three_pages(&d);
    obj(&d, 2, "<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>");
    xref(&d, upd, 10, prev);
    is_int(pages_of(d.p, d.n), 2, "a page dropped from /Kids without a free entry: 2 (counted 3)");

    /* Freed but still in /Kids (a careless writer): a reference to a free
     * object is null, not a page. */
    prev = three_pages(&d);
    static const int none[] = {0};
    prev = xref_free(&d, none, gone, 10, prev, 1);
    is_int(pages_of(d.p, d.n), 2, "a page freed, /Kids left as it was: 2 (counted 3)");
    /* A later update reuses number 5 for a new page. */
    obj(&d, 5, page);
    static const int again[] = {5, 0};
    xref(&d, again, 10, prev);
    is_int(pages_of(d.p, d.n), 3, "... its number reused for a page by a later update: 3");

    /* /Kids an indirect array, a tree two levels deep, a kid in it twice,
     * a cycle back to the root: each page once. */
    d.n = 0;
    put(&d, "%%PDF-1.4\n");
    obj(&d, 1, "<< /Type /Catalog /Pages 2 0 R >>");
    obj(&d, 2, "<< /Type /Pages /Kids 7 0 R /Count 3 >>");
    obj(&d, 7, "[6 0 R 5 0 R 2 0 R 11 0 R]");
    obj(&d, 11, "42"); /* a kid that is no dictionary: not a page */
    obj(&d, 6, "<< /Type /Pages /Parent 2 0 R /Kids [3 0 R 4 0 R 3 0 R] /Count 2 >>");
    obj(&d, 3, page);
    obj(&d, 4, page);
    /* A page holding a form field's /Kids: still a page, not a tree node. */
    obj(&d, 5, "<< /Type /Page /Parent 2 0 R /Annots [<< /FT /Btn /Kids [3 0 R 4 0 R] >>] >>");
    obj(&d, 8, page); /* a page object outside the tree (an orphan) */
    static const int tree[] = {1, 2, 7, 11, 6, 3, 4, 5, 8, 0};
    xref(&d, tree, 12, 0);
    is_int(pages_of(d.p, d.n), 3, "a two-level tree, /Kids indirect, a repeated kid, a cycle, a kid not a "
                                  "dictionary, a page with a field's /Kids, an orphan page: 3");

    /* PDF 1.5: the tree and pages in an object stream, xref streams as
     * the trailers; an update writes the tree again without page 5. */
    d.n = 0;
    put(&d, "%%PDF-1.5\n");
    obj(&d, 1, "<< /Type /Catalog /Pages 2 0 R >>");
    static const int nums[] = {2, 3, 4, 5};
    const char *const bodies[] = {"<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >>", page, page, page};
    object_stream(&d, 7, nums, bodies, 4);
    static const int ent[][4] = {{1, 1, 0, 0}, {2, 2, 7, 0}, {3, 2, 7, 1}, {4, 2, 7, 2},
                                 {5, 2, 7, 3}, {7, 1, 0, 0}, {8, 1, 0, 0}};
    prev = xref_stream(&d, 8, ent, 7, 9, 0);
    is_int(pages_of(d.p, d.n), 3, "object streams and an xref stream: 3 pages");
    static const int nums2[] = {2};
    const char *const bodies2[] = {"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>"};
    object_stream(&d, 9, nums2, bodies2, 1);
    static const int ent2[][4] = {{2, 2, 9, 0}, {5, 0, 0, 1}, {9, 1, 0, 0}, {10, 1, 0, 0}};
    xref_stream(&d, 10, ent2, 4, 11, prev);
    is_int(pages_of(d.p, d.n), 2, "... an update's object stream drops page 5 from /Kids: 2 (counted 3)");
}

/* Input no writer makes: whatever it holds, a count from 1 to the page
 * objects in it, no read out of bounds (ASan), no quadratic scan. */
static void bad_input(void)
{
    is_int(hr_media_pdf_pages("", 0), 1, "empty: 1");
    is_int(hr_media_pdf_pages("data:application/pdf;base64", 27), 1, "a data: URL without a comma: 1");
    is_int(hr_media_pdf_pages("!!!!****", 8), 1, "not base64: 1");
    static const char *const odd[] = {
        "%PDF-1.4\n1 0 obj\n<< /Type /Page",                   /* cut short, no endobj */
        "%PDF-1.4\nobj obj 0 obj 1 obj /Type /Page endobj",    /* headers without numbers */
        "%PDF-1.4\n123456789012 0 obj << /Type /Page >> endobj", /* an object number past 10 digits */
        "%PDF-1.4\n3 0 obj << /Type /Page >> stream\nno endstream", /* a stream never ended */
        "%PDF-1.4\n5 0 obj << /Type /ObjStm /N 1000000 /First 3 >> stream\nxyz\nendstream endobj", /* not deflated */
        "1 0 obj << /Type /Pages >> endobj 2 0 obj << /Type /Page >> endobj 2 0 obj << /Type /Pagex >> endobj",
    };
    static const uint64_t want[] = {1, 1, 1, 1, 1, 1};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++)
        is_int(pages_of(odd[i], strlen(odd[i])), want[i], "odd PDF %zu", i);
    /* An object stream whose header lies: offsets backwards, past the end, /First past the data. */
    struct pdf d;
    d.n = 0;
    put(&d, "%%PDF-1.5\n");
    static const int nums[] = {3, 4};
    const char *const bodies[] = {page, page};
    object_stream(&d, 7, nums, bodies, 2);
    char *at = strstr(d.p, "/First ");
    if (at) at[7] = '9'; /* /First 9x: past the header, or past the data */
    uint64_t p1 = pages_of(d.p, d.n);
    ok(p1 >= 1 && p1 <= 2, "an object stream with a wrong /First: %llu", (unsigned long long)p1);
    /* Every prefix of an updated file: between 1 and its page objects. */
    size_t prev = three_pages(&d);
    obj(&d, 4, page);
    obj(&d, 6, page);
    static const int upd[] = {4, 6, 0};
    xref(&d, upd, 10, prev);
    size_t bad = 0;
    for (size_t n = 0; n <= d.n; n++) {
        uint64_t p = pages_of(d.p, n);
        if (p < 1 || p > 4) bad++;
    }
    is_int(bad, 0, "every prefix of an updated file counts 1 to 4 pages");
    /* Many headers and no endobj: linear, not one scan to the end per header. */
    size_t big = 4 << 20, k = 0;
    char *many = malloc(big + 32);
    if (many) {
        for (int i = 0; k + 32 < big; i++)
            k += (size_t)snprintf(many + k, big + 32 - k, "%d 0 obj << /Type /Page >> ", i % 1000);
        uint64_t p = pages_of(many, k);
        is_int(p, 1000, "4 MB of headers without endobj: each object number once (1,000)");
    }
    free(many);
    /* A broken cross-reference: the reader falls back to the page objects
     * (each last definition not freed), never more than they are. */
    prev = three_pages(&d);
    obj(&d, 2, "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>");
    static const int upd2[] = {2, 0}, gone[] = {5, 0};
    xref_free(&d, upd2, gone, 10, prev, 99);
    is_int(pages_of(d.p, d.n), 2, "/Root naming no object: the pages not freed, 2");
    prev = three_pages(&d);
    obj(&d, 2, "<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R 12 0 R] /Count 4 >>");
    xref(&d, upd2, 13, prev);
    is_int(pages_of(d.p, d.n), 3, "a kid naming no object: the page objects, 3");
    static const char *const xrefs[] = {
        "xref\n0 99999999999\n",                                  /* a count past the entries */
        "xref\n5 2\n0000000000 00001 f",                           /* cut short after one free entry */
        "xref\n-5 1\n0000000000 00001 f \ntrailer << /Root >>\n", /* a negative start, a /Root not a reference */
        "xref\n0 3\nzzzzzzzzzz 00000 n \n0000000000 65535 f \n",  /* garbage where an offset goes */
        "xref 999999999999999999999 1 0 0 f trailer << /Root 1 0 R /Root 2 0 R >>\n",
    };
    for (size_t i = 0; i < sizeof xrefs / sizeof *xrefs; i++) {
        three_pages(&d);
        put(&d, "%s", xrefs[i]);
        uint64_t p = pages_of(d.p, d.n);
        ok(p >= 2 && p <= 3, "a broken xref table %zu after a 3-page file: %llu", i, (unsigned long long)p);
    }
    /* Every prefix of a file with a page deleted: between 1 and 3. */
    prev = three_pages(&d);
    obj(&d, 2, "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>");
    xref_free(&d, upd2, gone, 10, prev, 1);
    bad = 0;
    for (size_t n = 0; n <= d.n; n++) {
        uint64_t p = pages_of(d.p, n);
        if (p < 1 || p > 3) bad++;
    }
    is_int(bad, 0, "every prefix of a file with a page deleted counts 1 to 3");
    /* 4 MB of trailers and xref tables between two objects: read once. */
    big = 4 << 20;
    many = malloc(big + 64);
    if (many) {
        k = (size_t)snprintf(many, 64, "1 0 obj << /Type /Page >> endobj\n");
        while (k + 64 < big) k += (size_t)snprintf(many + k, 64, "xref 1 1 0 0 f trailer << /Root 1 0 R ");
        k += (size_t)snprintf(many + k, 64, "2 0 obj << /Type /Page >> endobj\n");
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint64_t p = pages_of(many, k);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        is_int(p, 1, "4 MB of trailers and xref tables freeing object 1: 1 page");
        ok(ms < 2000, "... read in %.0f ms (linear)", ms);
    }
    free(many);
}

int main(void)
{
    plain_and_updated();
    in_object_streams();
    deleted_pages();
    bad_input();
    return tap_exit();
}
