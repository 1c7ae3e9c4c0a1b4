/* pp_say: the proxprop modules' error message, printf-style into a
 * caller's buffer (nothing when err is NULL or errlen is 0). */
#ifndef PP_SAY_H
#define PP_SAY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline void pp_say(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#endif
