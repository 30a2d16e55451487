# tests/e2e/hsmlib.sh — a SoftHSM2 token in the test's scratch folder
# (PROTOCOLS.md 5.2: no root, its own SOFTHSM2_CONF); sourced after lib.sh.
#
#   hsm_begin LABEL   a fresh token LABEL (its user PIN $HSM_PIN) in $WORK/hsm;
#                     exits 77 saying why when SoftHSM2 or pkcs11-tool is
#                     missing.  Exports SOFTHSM2_CONF, RENC_PKCS11_MODULE,
#                     RENC_PKCS11_PIN; sets HSM_MODULE, HSM_TOKEN, HSM_PIN
#                     (distinctive, so a test can look for it in outputs).
#   p11 ARGS...       pkcs11-tool on the token, logged in
#   hsm_ref NAME [ID] the pkcs11: ref of object NAME (with id=%ID)

hsm_begin() {
  HSM_TOKEN=$1
  HSM_MODULE=""
  local m
  for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
           /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
    [ -r "$m" ] && { HSM_MODULE=$m; break; }
  done
  if [ -z "$HSM_MODULE" ] || ! command -v softhsm2-util >/dev/null ||
     ! command -v pkcs11-tool >/dev/null; then
    echo "SKIP: SoftHSM2 (softhsm2) and pkcs11-tool (opensc) are needed" >&2
    exit 77
  fi
  mkdir -p "$WORK/hsm/tokens"
  printf 'directories.tokendir = %s/hsm/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$WORK" >"$WORK/hsm/softhsm2.conf"
  export SOFTHSM2_CONF=$WORK/hsm/softhsm2.conf
  HSM_PIN=pin-7Qx3v9Kd
  export RENC_PKCS11_MODULE=$HSM_MODULE RENC_PKCS11_PIN=$HSM_PIN
  softhsm2-util --init-token --free --label "$HSM_TOKEN" --pin "$HSM_PIN" --so-pin 5678 \
    >"$WORK/hsm/init.log" 2>&1 || { fail "softhsm2-util --init-token"; finish; }
}

p11() {
  pkcs11-tool --module "$HSM_MODULE" --token-label "$HSM_TOKEN" --login --pin "$HSM_PIN" "$@" \
    >>"$WORK/hsm/p11.log" 2>&1
}

hsm_ref() {
  if [ $# -ge 2 ]; then
    echo "pkcs11:token=$HSM_TOKEN;id=%$2;object=$1"
  else
    echo "pkcs11:token=$HSM_TOKEN;object=$1"
  fi
}
