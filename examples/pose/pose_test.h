/* The pose example's tests: a small synthetic world. */
#ifndef POSE_TEST_H
#define POSE_TEST_H

#include "wb_test.h"

#include "pose.h"

/* pose_config_default, shrunk: train and test subjects, one sequence of 3
   frames each, population sampled poses for the shape model */
static void pose_test_config(pose_config *c, int train, int test, int population) {
    pose_config_default(c);
    c->train_subjects = train;
    c->test_subjects = test;
    c->sequences = 1;
    c->frames = 3;
    c->population = population;
}

/* the data of the world config() describes; that config into *c (may be
   NULL). The generator's message fails the test. */
static void pose_test_data(pose_data *d, pose_config *c, void (*config)(pose_config *)) {
    pose_config own;
    if (!c) c = &own;
    config(c);
    char msg[256];
    if (pose_data_create(d, c, msg, sizeof msg) != 0) fail_msg("%s", msg);
}

#endif
