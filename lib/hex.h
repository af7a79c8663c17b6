/* hex.h — the value of one hexadecimal digit (either case), shared by the
 * parsers that read hex: JSON's \u escapes, chunk sizes, traceparent. */
#ifndef HR_HEX_H
#define HR_HEX_H

/* 0..15, or -1 when c is not a hex digit (any other byte, or EOF). */
static inline int hr_hex_digit(unsigned c)
{
    if (c - '0' < 10)
        return (int)(c - '0');
    c |= 32;
    if (c - 'a' < 6)
        return (int)(c - 'a' + 10);
    return -1;
}

#endif
