#!/usr/bin/env bash
# Installs Ear, the main site and their configuration (what `make install` runs; see
# docs/deploying.md). Every path is a variable from the environment; DESTDIR stages the whole
# tree under another root (for packaging, or to look before installing for real).
#
#   BUILD        where `make` built ear and ear-site (build)
#   DESTDIR      a root to install under ("" for the real one)
#   PREFIX       /usr/local;  BINDIR $PREFIX/bin;  DATADIR $PREFIX/share/ear
#   DOCDIR       $PREFIX/share/doc/ear
#   SYSCONFDIR   /etc (nginx/sites-available/, supervisor/conf.d/)
#   SYSTEMDDIR   $SYSCONFDIR/systemd/system;  LOGDIR /var/log/ear (supervisor's logs)
#   INIT         systemd (default), supervisor, or none: which service files to install
#   SERVICE_USER the account supervisor runs both as (ear; systemd uses DynamicUser)
#   SERVER_NAME  nginx's server_name (_);  LISTEN  nginx's listen (80)
#   EAR_PORT     5001;  SITE_PORT  8000 (both on 127.0.0.1)
#   EAR_MODEL    $DATADIR/model.safetensors;  EAR_INDEX  $DATADIR/ear.index
#   EAR_DATA     $DATADIR/data (the dataset: audio/, frames/, labels.tsv)
#   SITE_CONTENT $DATADIR/site (the site's content folder; the sample one is copied there
#                once and never overwritten)
#   EAR_MEMORY_MAX 512M;  SITE_MEMORY_MAX 64M (systemd's MemoryMax)
#   MODEL, INDEX, DATA  optional: a model file, an index file and a dataset folder to copy
#                to EAR_MODEL, EAR_INDEX and EAR_DATA
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

BUILD=${BUILD:-build}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINDIR=${BINDIR:-$PREFIX/bin}
DATADIR=${DATADIR:-$PREFIX/share/ear}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/ear}
SYSCONFDIR=${SYSCONFDIR:-/etc}
SYSTEMDDIR=${SYSTEMDDIR:-$SYSCONFDIR/systemd/system}
LOGDIR=${LOGDIR:-/var/log/ear}
INIT=${INIT:-systemd}
SERVICE_USER=${SERVICE_USER:-ear}
SERVER_NAME=${SERVER_NAME:-_}
LISTEN=${LISTEN:-80}
EAR_PORT=${EAR_PORT:-5001}
SITE_PORT=${SITE_PORT:-8000}
EAR_MODEL=${EAR_MODEL:-$DATADIR/model.safetensors}
EAR_INDEX=${EAR_INDEX:-$DATADIR/ear.index}
EAR_DATA=${EAR_DATA:-$DATADIR/data}
SITE_CONTENT=${SITE_CONTENT:-$DATADIR/site}
EAR_MEMORY_MAX=${EAR_MEMORY_MAX:-512M}
SITE_MEMORY_MAX=${SITE_MEMORY_MAX:-64M}
MODEL=${MODEL:-}
INDEX=${INDEX:-}
DATA=${DATA:-}

fail() {
    echo "install: $*" >&2
    exit 1
}

case $INIT in systemd | supervisor | none) ;; *) fail "INIT=$INIT: use systemd, supervisor or none" ;; esac
case $BUILD in /*) ;; *) BUILD=$root/$BUILD ;; esac
for binary in ear ear-site; do
    [ -x "$BUILD/$binary" ] || fail "$BUILD/$binary not found: build first (make), then make install"
done
for path in "$PREFIX" "$BINDIR" "$DATADIR" "$SYSCONFDIR" "$SYSTEMDDIR" "$LOGDIR" "$EAR_MODEL" \
            "$EAR_INDEX" "$EAR_DATA" "$SITE_CONTENT"; do
    case $path in /*) ;; *) fail "'$path': installed paths must be absolute" ;; esac
done

# The names the templates in deploy/ use, as @NAME@.
names=(BINDIR DATADIR LOGDIR SYSTEMDDIR SERVICE_USER SERVER_NAME LISTEN EAR_PORT SITE_PORT
       EAR_MODEL EAR_INDEX EAR_DATA SITE_CONTENT EAR_MEMORY_MAX SITE_MEMORY_MAX)
EAR_ADDRESS=127.0.0.1:$EAR_PORT
SITE_ADDRESS=127.0.0.1:$SITE_PORT
names+=(EAR_ADDRESS SITE_ADDRESS)

# fill TEMPLATE OUTPUT: the template with every @NAME@ replaced, written whole or not at all.
fill() {
    local template=$1 output=$2 script=() name value
    for name in "${names[@]}"; do
        value=${!name}
        value=${value//\\/\\\\}
        value=${value//|/\\|}
        value=${value//&/\\&}
        script+=(-e "s|@$name@|$value|g")
    done
    mkdir -p "$(dirname "$output")"
    local temporary
    temporary=$(mktemp "$output.XXXXXX")
    if ! sed "${script[@]}" "$template" >"$temporary"; then
        rm -f "$temporary"
        fail "$template: cannot fill in"
    fi
    if grep -q '@[A-Z_]*@' "$temporary"; then
        rm -f "$temporary"
        fail "$template: a name without a value: $(grep -o '@[A-Z_]*@' "$temporary" | sort -u | tr '\n' ' ')"
    fi
    chmod 644 "$temporary"
    mv -f "$temporary" "$output"
    echo "  $output"
}

echo "Installing under ${DESTDIR:-/}:"
install -d "$DESTDIR$BINDIR" "$DESTDIR$DATADIR" "$DESTDIR$DOCDIR"
install -m 755 "$BUILD/ear" "$BUILD/ear-site" "$DESTDIR$BINDIR/"
echo "  $DESTDIR$BINDIR/ear, ear-site"

if [ -e "$DESTDIR$SITE_CONTENT/index.md" ]; then
    echo "  $DESTDIR$SITE_CONTENT: kept as it is (your content)"
else
    # Copied beside, then renamed: never half a content folder.
    [ ! -e "$DESTDIR$SITE_CONTENT" ] || rmdir "$DESTDIR$SITE_CONTENT" 2>/dev/null ||
        fail "$DESTDIR$SITE_CONTENT exists but has no index.md: move it away first"
    install -d "$(dirname "$DESTDIR$SITE_CONTENT")"
    staging=$(mktemp -d "$DESTDIR$SITE_CONTENT.XXXXXX")
    if ! cp -R "$root/site/content/." "$staging/"; then
        rm -rf "$staging"
        fail "cannot copy the site's content"
    fi
    chmod -R u=rwX,go=rX "$staging"
    mv -T "$staging" "$DESTDIR$SITE_CONTENT"
    echo "  $DESTDIR$SITE_CONTENT (the sample content: edit it)"
fi

[ -z "$MODEL" ] || { install -D -m 644 "$MODEL" "$DESTDIR$EAR_MODEL" && echo "  $DESTDIR$EAR_MODEL"; }
[ -z "$INDEX" ] || { install -D -m 644 "$INDEX" "$DESTDIR$EAR_INDEX" && echo "  $DESTDIR$EAR_INDEX"; }
if [ -n "$DATA" ]; then
    [ -d "$DATA/frames" ] || [ -d "$DATA/audio" ] || fail "$DATA: no frames/ or audio/ folder"
    install -d "$DESTDIR$EAR_DATA"
    cp -R "$DATA/." "$DESTDIR$EAR_DATA/"
    chmod -R u=rwX,go=rX "$DESTDIR$EAR_DATA"
    echo "  $DESTDIR$EAR_DATA"
fi

fill "$here/nginx/ear.conf" "$DESTDIR$SYSCONFDIR/nginx/sites-available/ear"
case $INIT in
systemd)
    fill "$here/systemd/ear.service" "$DESTDIR$SYSTEMDDIR/ear.service"
    fill "$here/systemd/ear-site.service" "$DESTDIR$SYSTEMDDIR/ear-site.service"
    ;;
supervisor)
    fill "$here/supervisor/ear_service.conf" "$DESTDIR$SYSCONFDIR/supervisor/conf.d/ear_service.conf"
    fill "$here/supervisor/site.conf" "$DESTDIR$SYSCONFDIR/supervisor/conf.d/site.conf"
    install -d "$DESTDIR$LOGDIR"
    ;;
esac
install -m 644 "$root/docs/deploying.md" "$DESTDIR$DOCDIR/"
echo "  $DESTDIR$DOCDIR/deploying.md"

cat <<EOF

Next (docs/deploying.md has the whole procedure):
  - put the model at $EAR_MODEL, the dataset in $EAR_DATA, and build the index:
      $BINDIR/ear index --model $EAR_MODEL --data $EAR_DATA -o $EAR_INDEX
  - ln -s $SYSCONFDIR/nginx/sites-available/ear $SYSCONFDIR/nginx/sites-enabled/ear
    && nginx -t && systemctl reload nginx
EOF
case $INIT in
systemd) echo "  - systemctl daemon-reload && systemctl enable --now ear ear-site" ;;
supervisor) echo "  - id $SERVICE_USER || useradd --system --no-create-home $SERVICE_USER;" \
                 "supervisorctl reread && supervisorctl update" ;;
esac
