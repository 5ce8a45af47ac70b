/* SPDX-License-Identifier: MIT */
/*
 * JSON lines for the tests of the event trace and of the tools' --json output: a strict validator
 * of one JSON value (RFC 8259: objects, arrays, strings with their escapes, numbers, true, false,
 * null) and a lookup of a top-level field, enough to check that every record is one whole JSON
 * object per line.
 */
#ifndef DAXFS_TEST_JSONL_H
#define DAXFS_TEST_JSONL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct jscan {
	const char *p;
	const char *end;
	int depth;
};

static inline void json_ws(struct jscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static inline bool json_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline bool json_string(struct jscan *s)
{
	if (s->p >= s->end || *s->p != '"')
		return false;
	for (s->p++; s->p < s->end; s->p++) {
		unsigned char c = (unsigned char)*s->p;

		if (c == '"') {
			s->p++;
			return true;
		}
		if (c < 0x20)
			return false;	/* control characters must be escaped */
		if (c == '\\') {
			if (++s->p >= s->end)
				return false;
			if (*s->p == 'u') {
				for (int i = 0; i < 4; i++)
					if (++s->p >= s->end || !json_hex(*s->p))
						return false;
			} else if (!strchr("\"\\/bfnrt", *s->p)) {
				return false;
			}
		}
	}
	return false;
}

static inline bool json_number(struct jscan *s)
{
	const char *start = s->p;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p >= s->end || *s->p < '0' || *s->p > '9')
		return false;
	if (*s->p == '0')
		s->p++;
	else
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	if (s->p < s->end && *s->p == '.') {
		if (++s->p >= s->end || *s->p < '0' || *s->p > '9')
			return false;
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return false;
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	return s->p > start;
}

static inline bool json_value(struct jscan *s);

static inline bool json_literal(struct jscan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n))
		return false;
	s->p += n;
	return true;
}

static inline bool json_container(struct jscan *s, char open, char close)
{
	if (++s->depth > 64)
		return false;
	s->p++;	/* open */
	(void)open;
	json_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return true;
	}
	for (;;) {
		json_ws(s);
		if (close == '}') {
			if (!json_string(s))
				return false;
			json_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return false;
			s->p++;
			json_ws(s);
		}
		if (!json_value(s))
			return false;
		json_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == ',') {
			s->p++;
			continue;
		}
		if (*s->p != close)
			return false;
		s->p++;
		s->depth--;
		return true;
	}
}

static inline bool json_value(struct jscan *s)
{
	json_ws(s);
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{':
		return json_container(s, '{', '}');
	case '[':
		return json_container(s, '[', ']');
	case '"':
		return json_string(s);
	case 't':
		return json_literal(s, "true");
	case 'f':
		return json_literal(s, "false");
	case 'n':
		return json_literal(s, "null");
	default:
		return json_number(s);
	}
}

/* Is [p, p + len) exactly one JSON object (no newline inside, nothing after it)? */
static inline bool json_object_line(const char *p, size_t len)
{
	struct jscan s = { p, p + len, 0 };

	if (len == 0 || *p != '{' || memchr(p, '\n', len))
		return false;
	if (!json_value(&s))
		return false;
	return s.p == s.end;
}

/*
 * The raw text of top-level field `key` of a valid JSON object line (a number's digits, a string
 * with its quotes), copied into out; false if there is no such field.
 */
static inline bool json_field(const char *line, size_t len, const char *key, char *out, size_t outlen)
{
	struct jscan s = { line + 1, line + len, 1 };
	size_t klen = strlen(key);

	for (;;) {
		json_ws(&s);
		const char *k = s.p;

		if (!json_string(&s))
			return false;
		bool match = (size_t)(s.p - k) == klen + 2 && memcmp(k + 1, key, klen) == 0;
		json_ws(&s);
		s.p++;	/* ':' */
		json_ws(&s);
		const char *v = s.p;
		if (!json_value(&s))
			return false;
		if (match) {
			size_t n = (size_t)(s.p - v);

			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, v, n);
			out[n] = 0;
			return true;
		}
		json_ws(&s);
		if (s.p >= s.end || *s.p != ',')
			return false;
		s.p++;
	}
}

/* A number field as unsigned; def when absent. */
static inline unsigned long long json_u64(const char *line, size_t len, const char *key, unsigned long long def)
{
	char buf[64];

	return json_field(line, len, key, buf, sizeof(buf)) ? strtoull(buf, NULL, 10) : def;
}

#endif
