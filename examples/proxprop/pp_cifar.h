/* proxprop: a reader for the CIFAR-10 binary format (pp_cifar.c).
 *
 * The "binary version" of CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html)
 * is six files, data_batch_1.bin .. data_batch_5.bin (training, 10000
 * records each) and test_batch.bin (10000 records), of 3073-byte records:
 * one label byte (0..9), then 3072 pixel bytes (1024 red, 1024 green, 1024
 * blue, each a 32 x 32 image row by row). The reader takes any number of
 * records per file (the tests use small generated files), and refuses a
 * missing or empty file, one whose size is not a whole number of records,
 * and a label byte above 9, naming the file and the record.
 */
#ifndef PP_CIFAR_H
#define PP_CIFAR_H

#include <stddef.h>

#define PP_CIFAR_PIXELS 3072
#define PP_CIFAR_RECORD (1 + PP_CIFAR_PIXELS)
#define PP_CIFAR_CLASSES 10

typedef struct {
    int n;             /* records                                           */
    unsigned char *X;  /* [PP_CIFAR_PIXELS * n]: record j at X + j*3072     */
    int *y;            /* [n] labels in 0..9                                */
} pp_cifar_set;

/* Reads DIR/data_batch_1.bin .. data_batch_5.bin, in that order, into
   *train and DIR/test_batch.bin into *test. Returns 0, or -1 with both sets
   zeroed and "FILE: reason" in err[errlen]. At most max_records (> 0) per
   set: more is refused (the training loops take int indices). */
int pp_cifar_load(const char *dir, int max_records, pp_cifar_set *train,
                  pp_cifar_set *test, char *err, size_t errlen);

/* NULL-safe; zeroes *s. */
void pp_cifar_free(pp_cifar_set *s);

#endif
