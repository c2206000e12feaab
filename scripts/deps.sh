#!/bin/sh
# Installs the Debian packages sld builds with, when any is missing.
# Uses sudo when not root. Safe to run repeatedly. chromium is for the test that
# opens the I2P HTML report in a headless browser (tests/test_report.c).
set -e
PKGS="build-essential libdnnl-dev libcjson-dev libpcre2-dev libutf8proc-dev libpng-dev libjpeg62-turbo-dev \
      libzip-dev libminizip-dev zlib1g-dev liblapack-dev libmicrohttpd-dev libcurl4-openssl-dev \
      chromium"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing >/dev/null
