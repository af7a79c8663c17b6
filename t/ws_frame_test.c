/* t/ws_frame_test.c — the WebSocket frame codec (src/ws_frame.c): heads as
 * browsers, SDKs and servers send them, read whole and byte by byte; every
 * head a relay must refuse, with its reason; heads built and read back;
 * masking; close payloads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tap.h"
#include "ws_frame.h"

/* Parse `buf` fed one byte more at a time: the first length at which a
 * head is complete (or refused) must be its length, and the result the same
 * as whole. */
static int parse_stepwise(const uint8_t *buf, size_t n, int from_client, struct hr_ws_head *h, const char **why)
{
    for (size_t have = 0; have <= n; have++) {
        int r = hr_ws_parse_head(buf, have, from_client, h, why);
        if (r) return r;
    }
    return 0;
}

static void refused(const uint8_t *buf, size_t n, int from_client, const char *want, const char *what)
{
    struct hr_ws_head h;
    const char *why = NULL;
    int r = parse_stepwise(buf, n, from_client, &h, &why);
    ok(r < 0 && why && strstr(why, want), "%s: refused (%s)", what, why ? why : "accepted");
}

int main(void)
{
    struct hr_ws_head h;
    const char *why = NULL;

    /* a client's masked "Hello" (RFC 6455 5.7) */
    static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    int r = parse_stepwise(hello, sizeof hello, 1, &h, &why);
    is_int(r, 6, "masked text frame: a 6-byte head");
    ok(h.fin && h.opcode == HR_WS_TEXT && h.masked && h.len == 5, "fin, text, masked, 5 bytes");
    uint8_t p[5];
    memcpy(p, hello + 6, 5);
    hr_ws_unmask(p, 5, h.mask, 0);
    ok(!memcmp(p, "Hello", 5), "unmasked: Hello");
    memcpy(p, hello + 6, 5);
    hr_ws_unmask(p, 2, h.mask, 0);
    hr_ws_unmask(p + 2, 3, h.mask, 2);
    ok(!memcmp(p, "Hello", 5), "unmasked in two pieces, by payload offset: Hello");

    /* the server's unmasked fragments "Hel" + "lo" */
    static const uint8_t frag1[] = {0x01, 0x03, 'H', 'e', 'l'}, frag2[] = {0x80, 0x02, 'l', 'o'};
    r = hr_ws_parse_head(frag1, sizeof frag1, 0, &h, &why);
    ok(r == 2 && !h.fin && h.opcode == HR_WS_TEXT && h.len == 3, "first fragment: not fin, text");
    r = hr_ws_parse_head(frag2, sizeof frag2, 0, &h, &why);
    ok(r == 2 && h.fin && h.opcode == HR_WS_CONT && h.len == 2, "last fragment: fin, continuation");

    /* 16- and 64-bit lengths */
    static const uint8_t len16[] = {0x82, 0x7e, 0x01, 0x00};
    r = parse_stepwise(len16, sizeof len16, 0, &h, &why);
    ok(r == 4 && h.len == 256 && h.opcode == HR_WS_BINARY, "16-bit length: 256");
    static const uint8_t len64[] = {0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    r = parse_stepwise(len64, sizeof len64, 1, &h, &why);
    ok(r == 14 && h.len == 65536 && h.masked, "64-bit length, masked: a 14-byte head, 65536");
    ok(hr_ws_parse_head(len64, 13, 1, &h, &why) == 0, "13 bytes of a 14-byte head: more needed");

    /* what a relay refuses */
    refused((const uint8_t[]){0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}, 7, 1, "unmasked", "client frame without a mask");
    refused((const uint8_t[]){0x81, 0x80, 1, 2, 3, 4}, 6, 0, "masked frame from the server", "server frame with a mask");
    refused((const uint8_t[]){0xc1, 0x80, 1, 2, 3, 4}, 6, 1, "reserved bits", "RSV1 (permessage-deflate) without an extension");
    refused((const uint8_t[]){0x91, 0x80, 1, 2, 3, 4}, 6, 1, "reserved bits", "RSV3");
    refused((const uint8_t[]){0x83, 0x80, 1, 2, 3, 4}, 6, 1, "unknown opcode", "opcode 3");
    refused((const uint8_t[]){0x8b, 0x80, 1, 2, 3, 4}, 6, 1, "unknown opcode", "opcode 0xB");
    refused((const uint8_t[]){0x09, 0x80, 1, 2, 3, 4}, 6, 1, "fragmented control", "ping without fin");
    refused((const uint8_t[]){0x89, 0xfe, 0, 126, 1, 2, 3, 4}, 8, 1, "longer than 125", "ping of 126 bytes");
    refused((const uint8_t[]){0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10, 0, "top bit", "64-bit length with its top bit");

    /* heads built and read back */
    static const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, (uint64_t)1 << 40};
    static const uint8_t key[4] = {9, 8, 7, 6};
    int all = 1;
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++)
        for (int masked = 0; masked < 2; masked++) {
            uint8_t b[14];
            size_t n = hr_ws_build_head(b, i & 1, HR_WS_BINARY, lens[i], masked ? key : NULL);
            r = hr_ws_parse_head(b, n, masked, &h, &why);
            all &= r == (int)n && h.len == lens[i] && h.fin == (int)(i & 1) && h.masked == masked &&
                   (!masked || !memcmp(h.mask, key, 4));
        }
    ok(all, "every length form, masked or not, built and read back");

    /* close payloads */
    uint8_t cp[125];
    size_t cn = hr_ws_close_payload(cp, 1009, "message over max_body_size");
    int code;
    ok(cn == 28 && hr_ws_close_valid(cp, cn, &code) && code == 1009, "close 1009 with a reason: built, valid");
    char lng[200];
    memset(lng, 'a', sizeof lng);
    memcpy(lng + 122, "\xc3\xa9\xc3\xa9", 4); /* a two-byte character across the 123-byte cut */
    lng[sizeof lng - 1] = '\0';
    cn = hr_ws_close_payload(cp, 1000, lng);
    ok(cn == 124 && hr_ws_close_valid(cp, cn, &code), "a long reason is cut before a character the cut would split");
    ok(hr_ws_close_valid(cp, 0, &code) && code == 1005, "an empty close is valid (1005)");
    ok(!hr_ws_close_valid((const uint8_t *)"\x03", 1, &code), "a one-byte close payload is not");
    ok(!hr_ws_close_valid((const uint8_t *)"\x03\xed", 2, &code), "1005 may not be sent");
    ok(!hr_ws_close_valid((const uint8_t *)"\x03\xe8\xff", 3, &code), "a reason not in UTF-8 is refused");
    ok(hr_ws_close_valid((const uint8_t *)"\x0f\xa0", 2, &code) && code == 4000, "4000 (application) is valid");
    tap_done();
    return tap_failed != 0;
}
