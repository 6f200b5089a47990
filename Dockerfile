# wyoming-60db: the Wyoming server for the 60db cloud speech API, as a container image.
#
# Here: script/image (podman; it makes the local Debian base this file starts from).
# Elsewhere, from any Debian-based image with or without Python:
#   docker build --build-arg BUILD_FROM=debian:bookworm-slim -t wyoming-60db .
#
# Configuration: the SIXTYDB_* environment variables (README, "Options"), the key
# from a file named by SIXTYDB_API_KEY_FILE (a Docker/Compose secret); see
# compose.yaml. Without a key it runs --demo, against the built-in 60db emulator.
ARG BUILD_FROM=localhost/wyoming-60db-base:bookworm

# Python 3.11+ with venv, and CA certificates (60db is reached over TLS). The
# base script/image makes has them; other Debian bases get them from apt.
FROM $BUILD_FROM AS python
RUN if ! python3 -c 'import ensurepip, sys, venv; sys.exit(sys.version_info < (3, 11))' \
        || [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            ca-certificates python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# The requirements, read from pyproject.toml in a stage of their own: the layers
# that install them are rebuilt only when a requirement changes, not on every
# edit of pyproject.toml.
FROM python AS requirements
COPY pyproject.toml /src/
RUN python3 -c 'import tomllib; t = tomllib.load(open("/src/pyproject.toml", "rb")); p = t["project"]; print(*p["dependencies"], *p.get("optional-dependencies", {}).get("zeroconf", []), sep="\n")' \
        > /requirements.txt \
    && python3 -c 'import tomllib; print(*tomllib.load(open("/src/pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
        > /build-requirements.txt

# pip's settings come in as build secrets, never stored in a layer (script/image
# passes this machine's CA bundle and index); without them pip uses its defaults.
FROM python AS pip
ENV PIP_CONFIG_FILE=/run/secrets/pip.conf \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The server's venv with the dependencies (and the zeroconf extra), no setuptools.
FROM pip AS dependencies
COPY --from=requirements /requirements.txt /tmp/
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=pip-ca \
    python3 -m venv /opt/wyoming-60db \
    && /opt/wyoming-60db/bin/pip install --quiet -r /tmp/requirements.txt \
    && /opt/wyoming-60db/bin/pip uninstall --quiet --yes setuptools 2>/dev/null

# The package from this checkout: a wheel (the build backend in a venv of its
# own), installed into a staging root with the server venv's paths. The final
# stage COPYs that root: COPY is cached by content, so a changed source file
# always reaches the image, while the dependency layer stays cached.
FROM dependencies AS package
COPY --from=requirements /build-requirements.txt /tmp/
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=pip-ca \
    python3 -m venv /opt/build \
    && /opt/build/bin/pip install --quiet -r /tmp/build-requirements.txt
COPY . /src/
RUN /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /dist /src \
    && /opt/wyoming-60db/bin/pip install --quiet --no-deps --no-index --root /staging /dist/*.whl

FROM python
# A user of its own: the server needs no privileges (uid 1000: a key file that
# the usual first user of the host owns is readable as a bind-mounted secret).
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin wyoming
# No key configured at all: the demo, as script/run does. An explicit
# SIXTYDB_DEMO (true or false) or a key on the command line is left alone.
RUN printf '%s\n' \
        '#!/bin/sh' \
        'if [ -z "${SIXTYDB_API_KEY:-}${SIXTYDB_API_KEY_FILE:-}${SIXTYDB_DEMO:-}" ]; then' \
        '    case " $* " in' \
        '    *" --api-key"* | *" --demo "*) ;;' \
        '    *)' \
        '        echo "No 60db API key given (SIXTYDB_API_KEY_FILE): starting in --demo mode (built-in emulator, no cloud)." >&2' \
        '        set -- --demo "$@"' \
        '        ;;' \
        '    esac' \
        'fi' \
        'exec wyoming-60db "$@"' \
        > /usr/local/bin/wyoming-60db-entrypoint \
    && chmod 0755 /usr/local/bin/wyoming-60db-entrypoint
COPY --from=dependencies /opt/wyoming-60db /opt/wyoming-60db
COPY --from=package /staging/ /
ENV PATH=/opt/wyoming-60db/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    SIXTYDB_URI=tcp://0.0.0.0:10300
RUN wyoming-60db --version
USER wyoming
WORKDIR /opt/wyoming-60db
EXPOSE 10300
# Asks `describe` and checks that the answer is 60db's `info`, as the official
# Wyoming apps do (they use nc, which this image does not have; Python it has).
# The port follows SIXTYDB_URI.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import json, os, socket, sys, urllib.parse; port = urllib.parse.urlsplit(os.environ.get('SIXTYDB_URI') or 'tcp://:10300').port or 10300; f = socket.create_connection(('127.0.0.1', port), 5).makefile('rwb'); f.write(b'{\"type\": \"describe\"}\\n'); f.flush(); h = json.loads(f.readline()); sys.exit(h.get('type') != 'info' or b'\"60db\"' not in f.read(h.get('data_length') or 0))"]
ENTRYPOINT ["/usr/local/bin/wyoming-60db-entrypoint"]
