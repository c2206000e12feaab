/*
 * fid_fixture.h — where tests find the FID Inception fixture weights.
 *
 * tests/fixtures/fid/inception-fid-random.pth is a zip-format torch pickle.
 * Once sld_st_open reads .pth files (issue 10), fid_inception_weights()
 * returns that path as is (the first check below) and the fallback is dead
 * code to delete. Until then it converts the file once into
 * /tmp/sld-test-fixtures/inception-fid-random.safetensors with
 * tools/pth_to_safetensors.py (python3, standard library only) and returns
 * that; without python3 it returns NULL and the tests that need the network
 * say they are skipped.
 */
#ifndef SLD_TEST_FID_FIXTURE_H
#define SLD_TEST_FID_FIXTURE_H

#include "io/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FID_PTH "tests/fixtures/fid/inception-fid-random.pth"
#define FID_CONVERTED "/tmp/sld-test-fixtures/inception-fid-random.safetensors"

static inline const char *fid_inception_weights(void)
{
    sld_st_file *f = NULL;
    if (sld_st_open(&f, FID_PTH, NULL) == SLD_OK) {
        sld_st_close(f);
        return FID_PTH;
    }
    if (access(FID_CONVERTED, R_OK) != 0 &&
        system("mkdir -p /tmp/sld-test-fixtures && python3 tools/pth_to_safetensors.py " FID_PTH
               " " FID_CONVERTED) != 0) {
        printf("SKIP: %s is not readable by sld_st_open yet and python3 could not convert it "
               "(tools/pth_to_safetensors.py)\n",
               FID_PTH);
        return NULL;
    }
    return FID_CONVERTED;
}

#endif /* SLD_TEST_FID_FIXTURE_H */
