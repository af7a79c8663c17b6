/* t/media_size_test.c — a base64 PDF's pages (lib/media_size.c), and so
 * what it counts (1,500 tokens a page, lib/media_tokens.c): plain files,
 * incrementally updated ones (a body appended after %%EOF whose objects
 * replace earlier ones of the same number: each page counts once, as its
 * last version), pages in object streams, and bad input. The PDFs are
 * written here, byte for byte. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* An xref section for objects `nums` (0 ends the list), its trailer and %%EOF;
 * returns where the section starts (the next update's /Prev). */
static size_t xref(struct pdf *d, const int *nums, int size, size_t prev)
{
    size_t at = d->n;
    put(d, "xref\n0 1\n0000000000 65535 f \n");
    for (const int *k = nums; *k; k++)
        put(d, "%d 1\n%010zu 00000 n \n", *k, d->off[*k]);
    put(d, "trailer\n<< /Size %d /Root 1 0 R", size);
    if (prev) put(d, " /Prev %zu", prev);
    put(d, " >>\nstartxref\n%zu\n%%%%EOF\n", at);
    return at;
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
}

int main(void)
{
    plain_and_updated();
    in_object_streams();
    bad_input();
    return tap_exit();
}
