/* ws_frame.c — see ws_frame.h. */
#include <string.h>
#include "tokenizer.h"
#include "ws_frame.h"

int hr_ws_parse_head(const uint8_t *buf, size_t n, int from_client, struct hr_ws_head *h, const char **why)
{
    if (n < 2) return 0;
    h->fin = buf[0] >> 7;
    h->opcode = buf[0] & 0x0f;
    h->masked = buf[1] >> 7;
    if (buf[0] & 0x70) {
        *why = "reserved bits set (no extension was negotiated)";
        return -1;
    }
    switch (h->opcode) {
    case HR_WS_CONT: case HR_WS_TEXT: case HR_WS_BINARY: case HR_WS_CLOSE: case HR_WS_PING: case HR_WS_PONG: break;
    default: *why = "unknown opcode"; return -1;
    }
    if (from_client && !h->masked) {
        *why = "unmasked frame from the client (RFC 6455 5.1: a client masks every frame)";
        return -1;
    }
    if (!from_client && h->masked) {
        *why = "masked frame from the server (RFC 6455 5.1: a server never masks)";
        return -1;
    }
    uint64_t len = buf[1] & 0x7f;
    size_t need = 2;
    if (len == 126) need += 2;
    else if (len == 127) need += 8;
    if (h->masked) need += 4;
    if (n < need) return 0;
    if (len == 126) {
        len = (uint64_t)buf[2] << 8 | buf[3];
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | buf[2 + i];
        if (len >> 63) {
            *why = "64-bit payload length with its top bit set";
            return -1;
        }
    }
    if (h->opcode >= HR_WS_CLOSE) {
        if (!h->fin) {
            *why = "fragmented control frame";
            return -1;
        }
        if (len > 125) {
            *why = "control frame longer than 125 bytes";
            return -1;
        }
    }
    h->len = len;
    if (h->masked) memcpy(h->mask, buf + need - 4, 4);
    else memset(h->mask, 0, 4);
    h->head_len = need;
    return (int)need;
}

void hr_ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset)
{
    for (size_t i = 0; i < len; i++) p[i] ^= mask[(offset + i) & 3];
}

size_t hr_ws_build_head(uint8_t out[14], int fin, int opcode, uint64_t len, const uint8_t *mask)
{
    size_t n = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        out[1] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        out[1] = m | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = m | 127;
        for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

size_t hr_ws_close_payload(uint8_t out[125], int code, const char *reason)
{
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    size_t r = reason ? strlen(reason) : 0;
    if (r > 123) r = 123;
    while (r && r < strlen(reason) && ((uint8_t)reason[r] & 0xC0) == 0x80) r--; /* not mid-character */
    memcpy(out + 2, reason, r);
    return 2 + r;
}

int hr_ws_close_valid(const uint8_t *p, size_t len, int *code)
{
    *code = HR_WS_CLOSE_NO_STATUS;
    if (!len) return 1;
    if (len == 1) return 0;
    int c = p[0] << 8 | p[1];
    *code = c;
    /* RFC 6455 7.4: 1004-1006 and 1015 are never sent; below 1000 and
     * 1016-2999 are not assigned to anyone who may send them. */
    int ok = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    return ok && hr_utf8_valid_prefix(p + 2, len - 2) == len - 2;
}
