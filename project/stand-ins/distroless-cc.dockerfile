# Stand-in for gcr.io/distroless/cc-debian12:nonroot, the six service
# images' runtime base, for machines that cannot pull it (built by
# project/stand-ins/build.sh from the debootstrapped debian:bookworm-slim).
#
# Kept from the official image: Debian 12's C runtime and nothing to run
# but it: glibc (libc6), libgcc-s1, libstdc++6, libgomp1 and OpenSSL's
# libssl3, unpacked from bookworm's own packages; the CA bundle
# /etc/ssl/certs/ca-certificates.crt, tzdata, netbase (/etc/services,
# /etc/protocols), base-files' /etc/os-release; /etc/passwd and /etc/group
# with root, nobody and nonroot (65532), USER 65532 and HOME /home/nonroot,
# /tmp with mode 1777; no shell, no package manager, no coreutils.
# Not kept: the packages' documentation, manuals and locales, and glibc's
# gconv modules (iconv's: nothing here calls it); the official image's SBOM
# and signature.
FROM debian:bookworm-slim AS rootfs

# The packages distroless/cc-debian12 is made of, unpacked into /rootfs
# without their maintainer scripts (nothing in the image could run them).
# hadolint ignore=DL3008,DL3003
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && mkdir -p /rootfs /debs && cd /debs \
    && apt-get download libc6 libgcc-s1 libstdc++6 libgomp1 libssl3 tzdata netbase base-files \
    && for deb in ./*.deb; do dpkg-deb --extract "$deb" /rootfs; done \
    && rm -rf /rootfs/usr/share/doc /rootfs/usr/share/man /rootfs/usr/share/info \
        /rootfs/usr/share/locale /rootfs/usr/share/lintian /rootfs/usr/lib/x86_64-linux-gnu/gconv \
        /rootfs/var/lib/dpkg /rootfs/usr/share/base-files \
    && mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/home/nonroot /rootfs/root \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
    && chmod 1777 /rootfs/tmp && chown 65532:65532 /rootfs/home/nonroot && chmod 700 /rootfs/root \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/rootfs/etc/passwd \
    && printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >/rootfs/etc/group \
    && rm -rf /debs /var/lib/apt/lists/*

FROM scratch
COPY --from=rootfs /rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
LABEL org.opencontainers.image.description="stand-in for gcr.io/distroless/cc-debian12:nonroot (bookworm's C runtime, CA certificates, no shell)"
