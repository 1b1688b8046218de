bench.o: bench/bench.c bench/../dataplane/dataplane.h \
 bench/../dataplane/../config/config.h \
 bench/../dataplane/../proto/proto.h \
 bench/../dataplane/../proto/../store/hot.h \
 bench/../dataplane/../proto/../store/store_int.h \
 bench/../dataplane/../proto/../store/store.h \
 bench/../dataplane/../udp/udp.h bench/../proto/proto.h \
 bench/../store/store.h bench/../udp/udp.h \
 bench/../tests/unit/common/frame.h \
 bench/../tests/unit/common/../../../dataplane/dataplane.h \
 bench/../tests/unit/common/../../../udp/udp.h
bench/../dataplane/dataplane.h:
bench/../dataplane/../config/config.h:
bench/../dataplane/../proto/proto.h:
bench/../dataplane/../proto/../store/hot.h:
bench/../dataplane/../proto/../store/store_int.h:
bench/../dataplane/../proto/../store/store.h:
bench/../dataplane/../udp/udp.h:
bench/../proto/proto.h:
bench/../store/store.h:
bench/../udp/udp.h:
bench/../tests/unit/common/frame.h:
bench/../tests/unit/common/../../../dataplane/dataplane.h:
bench/../tests/unit/common/../../../udp/udp.h:
