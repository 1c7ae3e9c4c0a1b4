/* Internal declarations of the training loop (train.c, optim.c). */
#ifndef WB_TRAIN_H
#define WB_TRAIN_H

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#include "wb_internal.h"

double wbi_lr_at(const wb_train_settings *s, long long step, long long total);
void wbi_optim_step(const wb_train_settings *s, int p, long long t, double lr,
                    const double *g, double *w, double *m, double *v);
void wbi_project(int p, double *w, const double *lo, const double *hi);

#endif
