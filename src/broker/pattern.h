/*
 * pattern.h: topic wildcard patterns (docs/design.md §5), shared by every protocol that
 * subscribes by pattern: segments separated by '.', where a segment '*' matches exactly one
 * segment of a topic name and '#' matches zero or more, as AMQP topic exchanges do.
 * "orders.*" matches "orders.eu" but not "orders" or "orders.eu.paris"; "orders.#" matches all
 * three; "#" matches every topic; "#.audit" matches "audit" and "a.b.audit". As in MQTT, a
 * wildcard in the first segment does not match a topic that starts with '$' (the system topics
 * $sys.*, docs/health.md): "#" and "*.groups" leave out "$sys.groups", "$sys.#" matches it.
 *
 * Pure functions over strings.
 */
#ifndef TD_BROKER_PATTERN_H
#define TD_BROKER_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

/* 0, or TD_EINVAL with why set to a static explanation: a pattern is 1 to 249 bytes of what
 * topic names hold (base.h: plain bytes and canonical %XX escapes; "%" alone, the topic of the
 * empty key) and the wildcards '*' and '#', which no name holds; they stand alone in their
 * segment ("ord*" is refused), and no segment is empty ("orders.", "a..b", ".x" are refused,
 * though topic names may have empty segments: a subscription takes such a string as the name of
 * an existing topic). */
int td_pattern_validate(const char *pattern, size_t len, const char **why);

/* Whether the topic name matches the (valid) pattern. */
bool td_pattern_match(const char *pattern, size_t plen, const char *topic, size_t tlen);

/* Whether the pattern has a wildcard (else it names one topic). */
bool td_pattern_is_literal(const char *pattern, size_t len);

#endif /* TD_BROKER_PATTERN_H */
