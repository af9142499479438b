# shellcheck shell=bash
# Skiff-specific checks for scripts/e2e-clients (sourced through E2E_HOOKS by scripts/e2e):
# docker search over /v1/search with Basic auth, and private repositories with collaborators
# through the real docker client. Needs E2E_USER2/E2E_PASS2 (collaborator-to-be) and
# E2E_USER3/E2E_PASS3 (a stranger).

skiff_api() { # METHOD PATH [JSON] — as the repository owner
  curl -sf -o /dev/null -X "$1" -u "$U:$P" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "http://$REG$2"
}

e2e_extra_checks() {
  local img=$REG/$U/busy:1 out

  # docker search still speaks v1: GET /v1/search with Basic auth.
  docker_login "$U" "$P" >/dev/null 2>&1
  if out=$(dk search "$REG/busy" 2>&1) && grep -q "$U/busy" <<<"$out"; then pass skiff.docker-search
  else fail skiff.docker-search "$(tr '\n' ' ' <<<"$out")"; fi

  # Make the repository private: a stranger can neither pull nor find it.
  check skiff.make-private skiff_api PUT "/v1/repositories/$U/busy/properties" '{"access":"private"}'
  dk logout "$REG" >/dev/null 2>&1
  dk rmi "$img" >/dev/null 2>&1
  docker_login "$E2E_USER3" "$E2E_PASS3" >/dev/null 2>&1
  if out=$(dk pull "$img" 2>&1); then fail skiff.private-refuses-stranger "pulled: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
  elif grep -Eqi 'not found|does not exist|unknown|denied' <<<"$out"; then pass skiff.private-refuses-stranger
  else fail skiff.private-refuses-stranger "unexpected error: $(tail -n 2 <<<"$out" | tr '\n' ' ')"; fi
  if out=$(dk search "$REG/busy" 2>&1) && ! grep -q "$U/busy " <<<"$out"; then pass skiff.private-hidden-from-search
  else fail skiff.private-hidden-from-search "$(tr '\n' ' ' <<<"$out")"; fi
  dk load -i "$E2E_IMG_ARCHIVE" >/dev/null 2>&1
  check skiff.stranger-has-local-image dk tag e2e/busy:1 "$REG/$U/busy:stranger"
  check_refused skiff.private-refuses-stranger-push dk push "$REG/$U/busy:stranger"
  dk logout "$REG" >/dev/null 2>&1
  if out=$(dk pull "$img" 2>&1); then fail skiff.private-refuses-anonymous "pulled"
  else pass skiff.private-refuses-anonymous; fi

  # A collaborator pulls and pushes.
  check skiff.add-collaborator skiff_api PUT "/v1/repositories/$U/busy/collaborators/$E2E_USER2"
  docker_login "$E2E_USER2" "$E2E_PASS2" >/dev/null 2>&1
  check skiff.collaborator-pulls dk pull "$img"
  dk tag "$img" "$REG/$U/busy:collab" >/dev/null 2>&1
  check skiff.collaborator-pushes dk push "$REG/$U/busy:collab"
  dk logout "$REG" >/dev/null 2>&1

  skiff_robot_checks
}

# A robot account made through the management API, scoped to push $U/robot-ok only: `docker
# login` with its secret, then a push where it may and one where it may not.
skiff_robot_checks() {
  local made secret login out
  made=$(curl -sf -X POST -u "$U:$P" -H 'Content-Type: application/json' \
    --data "{\"name\":\"e2e\",\"robot\":\"$U\",\"scopes\":[{\"repository\":\"$U/robot-ok\",\"actions\":[\"pull\",\"push\"]}]}" \
    "http://$REG/api/v1/tokens") || { fail skiff.robot-created "POST /api/v1/tokens failed"; return; }
  secret=$(jq -r '.secret' <<<"$made") login=$(jq -r '.token.login // .login' <<<"$made")
  if [ -n "$secret" ] && [ "$secret" != null ] && [ "$login" = "robot\$$U+e2e" ]; then pass skiff.robot-created
  else fail skiff.robot-created "$made"; return; fi
  check skiff.robot-docker-login docker_login "$login" "$secret"
  dk tag e2e/busy:1 "$REG/$U/robot-ok:1" >/dev/null 2>&1
  if out=$(dk push "$REG/$U/robot-ok:1" 2>&1); then pass skiff.robot-pushes-where-allowed
  else fail skiff.robot-pushes-where-allowed "$(tail -n 3 <<<"$out" | tr '\n' ' ')"; fi
  dk tag e2e/busy:1 "$REG/$U/robot-not:1" >/dev/null 2>&1
  check_refused skiff.robot-refused-elsewhere dk push "$REG/$U/robot-not:1"
  check_fails skiff.robot-refused-elsewhere-nothing-stored \
    curl -sf -o /dev/null -u "$U:$P" "http://$REG/v2/$U/robot-not/tags/list"
  dk logout "$REG" >/dev/null 2>&1
}
