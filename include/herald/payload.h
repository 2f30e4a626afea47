/*
 * Payload modes: the bytes herald sends for an event.
 *
 *   raw      the Kafka message value exactly as consumed (the default)
 *   compact  re-serialized compact JSON, byte-identical to what JavaScript's
 *            JSON.stringify(JSON.parse(body)) produces, for receivers that
 *            verify the re-serialized form
 *   data     only the value of the top-level "data" member, its bytes as
 *            they appear in the event (surrounding whitespace trimmed)
 *   message  {"message":"<event JSON as a string>"}, the raw event bytes
 *            escaped into one JSON string
 *
 * All functions are pure: no I/O, no global state.
 */
#ifndef HERALD_PAYLOAD_H
#define HERALD_PAYLOAD_H

#include <stddef.h>

#include "herald/buf.h"

#define PAYLOAD_MODE_MAP(XX)                                                                       \
    XX(RAW, "raw")                                                                                 \
    XX(COMPACT, "compact")                                                                         \
    XX(DATA, "data")                                                                               \
    XX(MESSAGE, "message")

enum payload_mode {
#define XX(id, name) PAYLOAD_##id,
    PAYLOAD_MODE_MAP(XX)
#undef XX
};

int payload_mode_parse(const char *name, enum payload_mode *out);
const char *payload_mode_name(enum payload_mode mode);

/*
 * Renders the body for mode into out (appending). For PAYLOAD_RAW this is a
 * copy of the input; callers that send raw bodies use the event bytes
 * directly and never call this. Returns 0, HERALD_EPARSE when the event is
 * not valid JSON (or has no "data" member for PAYLOAD_DATA), or the buf error.
 */
int payload_render(enum payload_mode mode, const char *event, size_t len, struct buf *out);

/* JSON.stringify(JSON.parse(in)) in C; 0, HERALD_EPARSE or a buf error. */
int payload_json_compact(const char *in, size_t len, struct buf *out);

#endif
