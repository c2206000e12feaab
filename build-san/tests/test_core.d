build-san/tests/test_core: tests/test_core.c src/core/core.h \
 include/sld.h src/io/json.h src/io/safetensors.h src/model/weights.h \
 tests/test.h
src/core/core.h:
include/sld.h:
src/io/json.h:
src/io/safetensors.h:
src/model/weights.h:
tests/test.h:
