#!/usr/bin/env bash
# The files in deploy/ as `make install` fills them in: installed where the variables say
# (DESTDIR staging included), no name left unfilled, the site's content kept on reinstall;
# nginx accepts the server block (nginx -t), systemd accepts the units (systemd-analyze
# verify, silent), and the units carry the restart policy, memory cap and hardening.
set -u
test_name=site_deploy_files
source "$(dirname "$0")/lib.sh"
build=$(dirname "$EAR_BIN")

install_into() { # install_into LOG MAKE_VARIABLES...
    local log=$1
    shift
    make -s -C "$EAR_SOURCE_DIR" install BUILD="$build" "$@" >"$log" 2>&1
}

# 1. Staged under DESTDIR with the defaults (systemd).
stage=$work/stage
install_into "$work/install.log" DESTDIR="$stage"
check "make install DESTDIR=... succeeds" [ $? = 0 ]
for file in usr/local/bin/ear usr/local/bin/ear-site; do
    check "$file installed, executable" [ -x "$stage/$file" ]
done
for file in etc/nginx/sites-available/ear etc/systemd/system/ear.service \
            etc/systemd/system/ear-site.service usr/local/share/ear/site/index.md \
            usr/local/share/ear/site/templates/layout.html usr/local/share/doc/ear/deploying.md; do
    check "$file installed" [ -f "$stage/$file" ]
done
check "as many posts as in site/content" \
    [ "$(ls "$stage/usr/local/share/ear/site/posts" | wc -l)" = "$(ls "$EAR_SOURCE_DIR/site/content/posts" | wc -l)" ]
check "no supervisor files with INIT=systemd" [ ! -e "$stage/etc/supervisor" ]
check "no name left unfilled" bash -c "! grep -rq '@[A-Z_]*@' '$stage/etc'"
check "no temporary file left" [ -z "$(find "$stage" -name '*.??????')" ]
check "ExecStart points at BINDIR" \
    grep -q '^ExecStart=/usr/local/bin/ear serve --model /usr/local/share/ear/model.safetensors' \
    "$stage/etc/systemd/system/ear.service"

echo "my own words" >>"$stage/usr/local/share/ear/site/index.md"
install_into "$work/install2.log" DESTDIR="$stage"
check "a second install succeeds" [ $? = 0 ]
check "... and keeps the site's content as edited" \
    grep -q "my own words" "$stage/usr/local/share/ear/site/index.md"

# 2. Other paths, supervisor, and a model, an index and a dataset to copy.
mkdir -p "$work/dataset/frames"
echo frame >"$work/dataset/frames/a.png"
echo index >"$work/some.index"
model=$EAR_SOURCE_DIR/tests/fixtures/nn/nn_basic_f32.safetensors
install_into "$work/install3.log" DESTDIR="$work/stage2" INIT=supervisor PREFIX=/opt/ear \
    SYSCONFDIR=/etc/ear-test SERVICE_USER=www-data EAR_PORT=5101 SITE_PORT=8101 \
    SERVER_NAME=example.org MODEL="$model" INDEX="$work/some.index" DATA="$work/dataset"
check "make install INIT=supervisor PREFIX=/opt/ear succeeds" [ $? = 0 ]
check "MODEL copied to EAR_MODEL" cmp -s "$model" "$work/stage2/opt/ear/share/ear/model.safetensors"
check "INDEX copied to EAR_INDEX" cmp -s "$work/some.index" "$work/stage2/opt/ear/share/ear/ear.index"
check "DATA copied to EAR_DATA" cmp -s "$work/dataset/frames/a.png" \
    "$work/stage2/opt/ear/share/ear/data/frames/a.png"
check "... readable by the services" \
    [ "$(stat -c %a "$work/stage2/opt/ear/share/ear/model.safetensors")" = 644 ]
supervisor_dir=$work/stage2/etc/ear-test/supervisor/conf.d
check "ear_service.conf installed" [ -f "$supervisor_dir/ear_service.conf" ]
check "site.conf installed" [ -f "$supervisor_dir/site.conf" ]
check "binaries under the new prefix" [ -x "$work/stage2/opt/ear/bin/ear-site" ]
check "supervisor runs ear from BINDIR on EAR_PORT" grep -q \
    '^command=/opt/ear/bin/ear serve .*--port 5101$' "$supervisor_dir/ear_service.conf"
check "supervisor runs the site as SERVICE_USER" grep -qx 'user=www-data' "$supervisor_dir/site.conf"
for key in autorestart=true stopsignal=TERM 'stopwaitsecs=[0-9]*' 'stdout_logfile=/var/log/ear/.*'; do
    check "site.conf has $key" grep -qx "$key" "$supervisor_dir/site.conf"
    check "ear_service.conf has $key" grep -qx "$key" "$supervisor_dir/ear_service.conf"
done
check "nginx: server_name filled" grep -qx '    server_name example.org;' \
    "$work/stage2/etc/ear-test/nginx/sites-available/ear"
check "nginx: Ear on EAR_PORT" grep -qx '        proxy_pass http://127.0.0.1:5101;' \
    "$work/stage2/etc/ear-test/nginx/sites-available/ear"
check "no systemd units with INIT=supervisor" [ ! -e "$work/stage2/etc/ear-test/systemd" ]

# 3. Refusals.
install_into "$work/bad1.log" DESTDIR="$work/stage3" INIT=upstart
check "an unknown INIT is refused" [ $? != 0 ]
check "... saying so" grep -q "INIT=upstart" "$work/bad1.log"
check "... before installing anything" [ ! -e "$work/stage3" ]
make -s -C "$EAR_SOURCE_DIR" install BUILD="$work/nowhere" DESTDIR="$work/stage4" \
    >"$work/bad2.log" 2>&1
check "installing without a build is refused" [ $? != 0 ]
check "... saying to build first" grep -q "build first" "$work/bad2.log"
check "... installing nothing" [ ! -e "$work/stage4" ]

# 4. nginx accepts the server block inside a minimal nginx.conf.
nginx_root=$work/nginx
mkdir -p "$nginx_root/data/frames"
install_into "$work/install4.log" DESTDIR="$nginx_root/stage" LISTEN="127.0.0.1:$(free_port)" \
    EAR_DATA="$nginx_root/data"
cat >"$nginx_root/nginx.conf" <<EOF
pid $nginx_root/nginx.pid;
error_log $nginx_root/error.log;
events {}
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path $nginx_root/body;
    proxy_temp_path $nginx_root/proxy;
    fastcgi_temp_path $nginx_root/fastcgi;
    uwsgi_temp_path $nginx_root/uwsgi;
    scgi_temp_path $nginx_root/scgi;
    include $nginx_root/stage/etc/nginx/sites-available/ear;
}
EOF
nginx -t -q -p "$nginx_root" -e "$nginx_root/error.log" -c "$nginx_root/nginx.conf" >"$work/nginx-t.log" 2>&1
check "nginx -t accepts the server block" [ $? = 0 ]
[ "$failed" = 0 ] || cat "$work/nginx-t.log" >&2

# 5. systemd accepts the units (verify needs the binaries where ExecStart says).
units_prefix=$work/units
install_into "$work/install5.log" PREFIX="$units_prefix" SYSCONFDIR="$units_prefix/etc"
check "install for systemd-analyze succeeds" [ $? = 0 ]
units=$units_prefix/etc/systemd/system
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$units/ear.service" "$units/ear-site.service" >"$work/verify.log" 2>&1
    check "systemd-analyze verify: status 0" [ $? = 0 ]
    check "systemd-analyze verify: no complaint" [ ! -s "$work/verify.log" ]
    cat "$work/verify.log" >&2
else
    check "systemd-analyze is installed (make deps installs systemd)" false
fi
for unit in ear.service ear-site.service; do
    for key in Restart=on-failure 'MemoryMax=[0-9]*[MG]' DynamicUser=yes ProtectSystem=strict \
               ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
               'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' KillSignal=SIGTERM; do
        check "$unit has $key" grep -qx "$key" "$units/$unit"
    done
done

finish
