# Functions the build scripts share; sourced (not run) from the repository's root.

# pinned MODULE_DIR MODULE: the version of MODULE that MODULE_DIR's go.mod requires.
pinned() {
	awk -v m="$2" '($1 == m || ($1 == "require" && $2 == m)) && $0 !~ /=>/ {print $NF; exit}' "$1/go.mod"
}

# fetch_debs LOCK DIR downloads the
# Debian packages LOCK pins ("package version arch sha256" lines, # comments) into DIR, each
# once: a file already there with the pinned sha256 is kept. apt-get update runs only when a
# version is not found. The image builders check every file's sha256 again.
fetch_debs() {
	local lock=$1 debs=$2 pkg version arch sha file updated=
	mkdir -p "$debs"
	while read -r pkg version arch sha; do
		[[ -z $pkg || $pkg == \#* ]] && continue
		file=$debs/${pkg}_${version//:/%3a}_$arch.deb
		if [[ -f $file ]] && echo "$sha  $file" | sha256sum --quiet -c - 2>/dev/null; then
			continue
		fi
		rm -f "$file"
		if ! (cd "$debs" && apt-get download -q=2 "$pkg:$arch=$version" >/dev/null 2>&1); then
			if [[ -z $updated ]]; then
				apt-get update -q=2
				updated=1
			fi
			(cd "$debs" && apt-get download -q=2 "$pkg:$arch=$version" >/dev/null)
		fi
	done <"$lock"
}
