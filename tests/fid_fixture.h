/*
 * fid_fixture.h — where tests find the FID Inception fixture weights:
 * tests/fixtures/fid/inception-fid-random.pth, a zip-format torch pickle
 * (fp16) read through sld_st_open like the real pt_inception-….pth.
 */
#ifndef SLD_TEST_FID_FIXTURE_H
#define SLD_TEST_FID_FIXTURE_H

#include "io/safetensors.h"

#define FID_PTH "tests/fixtures/fid/inception-fid-random.pth"

static inline const char *fid_inception_weights(void) { return FID_PTH; }

#endif /* SLD_TEST_FID_FIXTURE_H */
