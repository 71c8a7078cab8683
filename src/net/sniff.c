/*
 * sniff.c: recognises what a peer speaks from the first bytes it sent, so that a listener can
 * say plainly that a TLS client, a browser or a Redis client knocked on the wrong port, instead
 * of "frame size 369295617 above the limit". Pure: reads only the bytes given.
 *
 * TLS: a handshake record, content type 0x16 and major version 3 (SSL 3.0 to TLS 1.3 all write
 * 3.x in the record header); a client's first handshake message is its ClientHello.
 * HTTP: a method of RFC 9110 (or PRI, HTTP/2's connection preface) and a space.
 * RESP: an array header, '*' and a digit, as every Redis client sends its commands.
 */
#include <string.h>

#include "net/net.h"

net_sniff_kind net_sniff(const uint8_t *p, size_t n)
{
    if (n >= 2 && p[0] == 0x16 && p[1] == 0x03)
        return NET_SNIFF_TLS;
    static const char *const methods[] = {"GET ",   "HEAD ",    "POST ",    "PUT ",   "DELETE ",
                                          "PATCH ", "OPTIONS ", "CONNECT ", "TRACE ", "PRI "};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        size_t len = strlen(methods[i]);
        /* Four bytes are enough to tell ("POST" without its space yet). */
        if (n >= len ? memcmp(p, methods[i], len) == 0 : n >= 4 && memcmp(p, methods[i], n) == 0)
            return NET_SNIFF_HTTP;
    }
    if (n >= 2 && p[0] == '*' && p[1] >= '0' && p[1] <= '9')
        return NET_SNIFF_RESP;
    return NET_SNIFF_UNKNOWN;
}

const char *net_sniff_describe(net_sniff_kind k)
{
    switch (k) {
    case NET_SNIFF_TLS:
        return "a TLS handshake (ClientHello)";
    case NET_SNIFF_HTTP:
        return "an HTTP request";
    case NET_SNIFF_RESP:
        return "a Redis (RESP) command";
    default:
        return "bytes of an unknown protocol";
    }
}
