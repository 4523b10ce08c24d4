# Front-end assets of the learner portal (include from the Makefile: `include Makefile.assets.mk`).
# The built, minified bundles are committed under service/static/dist, so `make run` and
# `make test` need only Python; these targets need Node.js 20+ and npm.
.PHONY: assets assets-check screenshots

# Rebuild service/static/dist from frontend/ exactly as pinned by package-lock.json.
assets:
	cd frontend && npm ci --no-audit --no-fund && node build.mjs

# Fail when the committed bundles differ from a fresh build (for CI, if it has npm).
assets-check: assets
	git diff --exit-code --stat -- service/static/dist

# Re-take the README's screenshots with the browser tests (needs Debian's chromium).
screenshots: install
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest tests/browser -q
