burst.o: dataplane/burst.c dataplane/dp_int.h dataplane/dataplane.h \
 dataplane/../config/config.h dataplane/../proto/proto.h \
 dataplane/../proto/../store/hot.h \
 dataplane/../proto/../store/store_int.h \
 dataplane/../proto/../store/store.h dataplane/../udp/udp.h
dataplane/dp_int.h:
dataplane/dataplane.h:
dataplane/../config/config.h:
dataplane/../proto/proto.h:
dataplane/../proto/../store/hot.h:
dataplane/../proto/../store/store_int.h:
dataplane/../proto/../store/store.h:
dataplane/../udp/udp.h:
