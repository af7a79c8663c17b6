/* t/fuzz/fuzz_ws_frame.c — fuzz target: the WebSocket frame codec as the
 * relay reads a peer. Byte 0: bit 0 the side (client frames must be masked),
 * bits 1-7 the size of the pieces the rest arrives in (0 = whole). Frames
 * are read one after another as ws_relay.c reads them; each head read in
 * pieces must equal the head read whole, built again it must read back the
 * same, and a close frame's payload is checked like the relay's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int from_client = data[0] & 1;
    size_t step = data[0] >> 1;
    const uint8_t *in = data + 1;
    size_t len = size - 1, off = 0;
    while (off < len) {
        struct hr_ws_head whole, piece;
        const char *why = NULL, *why2 = NULL;
        int r = hr_ws_parse_head(in + off, len - off, from_client, &whole, &why);
        if (r < 0 && !why) abort();
        if (r <= 0) break;
        if (r < 2 || r > 14 || (size_t)r != whole.head_len) abort();
        if (whole.opcode >= HR_WS_CLOSE && (whole.len > 125 || !whole.fin)) abort();
        if (whole.masked != from_client) abort();
        /* in pieces: incomplete until the whole head is in, then the same */
        size_t have = step ? 0 : len - off;
        int r2 = 0;
        while (!(r2 = hr_ws_parse_head(in + off, have, from_client, &piece, &why2)) && have < len - off)
            have = have + step > len - off ? len - off : have + step;
        if (r2 != r || piece.len != whole.len || piece.opcode != whole.opcode || piece.fin != whole.fin ||
            memcmp(piece.mask, whole.mask, 4))
            abort();
        uint8_t b[14];
        size_t n = hr_ws_build_head(b, whole.fin, whole.opcode, whole.len, whole.masked ? whole.mask : NULL);
        struct hr_ws_head back;
        if (hr_ws_parse_head(b, n, from_client, &back, &why) != (int)n || back.len != whole.len ||
            back.opcode != whole.opcode || back.fin != whole.fin)
            abort();
        off += (size_t)r;
        uint64_t left = len - off;
        size_t plen = whole.len < left ? (size_t)whole.len : (size_t)left;
        if (whole.opcode == HR_WS_CLOSE) {
            uint8_t p[125];
            memcpy(p, in + off, plen);
            if (whole.masked) hr_ws_unmask(p, plen, whole.mask, 0);
            int code;
            if (hr_ws_close_valid(p, plen, &code)) {
                uint8_t again[125];
                char reason[124];
                memcpy(reason, p + (plen >= 2 ? 2 : plen), plen >= 2 ? plen - 2 : 0);
                reason[plen >= 2 ? plen - 2 : 0] = '\0';
                if (plen >= 2 && strlen(reason) == plen - 2 &&
                    !hr_ws_close_valid(again, hr_ws_close_payload(again, code, reason), &code))
                    abort(); /* what was valid is valid built again */
            }
        }
        off += plen;
    }
    return 0;
}
