/* ws_frame.h — the WebSocket frame codec (RFC 6455 section 5) the relay
 * reads both sides with: frame heads parsed and checked for what a relay
 * without extensions must refuse, payload unmasked in place, heads built. */
#ifndef HR_WS_FRAME_H
#define HR_WS_FRAME_H
#include <stddef.h>
#include <stdint.h>

enum hr_ws_opcode {
    HR_WS_CONT = 0x0,
    HR_WS_TEXT = 0x1,
    HR_WS_BINARY = 0x2,
    HR_WS_CLOSE = 0x8,
    HR_WS_PING = 0x9,
    HR_WS_PONG = 0xA,
};

/* Close codes (RFC 6455 7.4.1, and 1014 from the IANA registry). */
enum {
    HR_WS_CLOSE_NORMAL = 1000,
    HR_WS_CLOSE_GOING_AWAY = 1001,
    HR_WS_CLOSE_PROTOCOL = 1002,
    HR_WS_CLOSE_NO_STATUS = 1005,   /* never sent: a close frame without a code */
    HR_WS_CLOSE_BAD_DATA = 1007,
    HR_WS_CLOSE_TOO_BIG = 1009,
    HR_WS_CLOSE_INTERNAL = 1011,
    HR_WS_CLOSE_BAD_GATEWAY = 1014,
};

struct hr_ws_head {
    int fin;
    int opcode;
    int masked;
    uint8_t mask[4];
    uint64_t len;     /* payload length */
    size_t head_len;  /* bytes of the head itself (2..14) */
};

/* A frame head at `buf` (`n` bytes). Returns its length (> 0) with *h
 * filled, 0 when more bytes are needed, or -1 with *why set for a head no
 * peer may send: reserved bits (no extension is negotiated), an unknown
 * opcode, a control frame fragmented or longer than 125 bytes, a 64-bit
 * length with its top bit set (a length not in its shortest form is let
 * through: RFC 6455 asks that of senders only). `from_client`: frames
 * must be masked; else they must not be. */
int hr_ws_parse_head(const uint8_t *buf, size_t n, int from_client, struct hr_ws_head *h, const char **why);

/* XOR `len` bytes with `mask`, the first byte being byte `offset` of the
 * payload. */
void hr_ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset);

/* A head for a frame of `len` bytes into out (14 bytes at most); `mask`
 * NULL for an unmasked frame. Returns its length. */
size_t hr_ws_build_head(uint8_t out[14], int fin, int opcode, uint64_t len, const uint8_t *mask);

/* A close frame's payload (code, then up to 123 bytes of `reason`, cut at
 * a UTF-8 character boundary) into out; returns its length. */
size_t hr_ws_close_payload(uint8_t out[125], int code, const char *reason);

/* Whether a close frame's payload is well formed: empty, or a code a peer
 * may send followed by UTF-8. *code gets it (1005 when empty). */
int hr_ws_close_valid(const uint8_t *p, size_t len, int *code);
#endif
