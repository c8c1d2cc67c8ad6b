#!/usr/bin/env bash
# deploy/local/es-plugin.sh
# Builds the analysis plugin in deploy/elasticsearch/analysis-plugin and installs it
# into $ES_HOME; skipped when that very build is already installed. The minimal
# distribution lacks the analysis-common module, and the `.security` index (API keys,
# native roles) needs three of its components: the plugin registers those three,
# `pattern_capture`, `uax_url_email` and `unique`, through the stable plugin API.
# Nodes already running get it at their next start.
source "$(dirname "$0")/common.sh"

plugin=caravan-analysis
src="$REPO_ROOT/deploy/elasticsearch/analysis-plugin"
installed="$ES_HOME/plugins/$plugin/stable-plugin-descriptor.properties"
if [ ! -x "$ES_HOME/bin/elasticsearch-plugin" ]; then
  say "no Elasticsearch distribution at $ES_HOME (deploy/local/provision.sh fetches it)"; exit 1
fi

# The build is named by a hash of its inputs (sources, this script, the Elasticsearch
# version) and carried as the plugin's version, so the installed descriptor itself
# tells whether it is current.
build="$(cd "$REPO_ROOT" && {
  find deploy/elasticsearch/analysis-plugin -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  sha256sum deploy/local/es-plugin.sh
  echo "$CARAVAN_ES_VERSION"
} | sha256sum | cut -c1-16)"
current() { grep -qx "version=$build" "$installed" 2>/dev/null; }
if current; then exit 0; fi

# Two provisions at once (two `make test`s on one machine) would share the build
# directory and the plugin folder: one builds, the other waits and finds it done.
work="$CARAVAN_LOCAL_DIR/build/$plugin"
mkdir -p "$CARAVAN_LOCAL_DIR/build"
exec 9>"$CARAVAN_LOCAL_DIR/build/$plugin.lock"
flock 9
if current; then exit 0; fi

say "building the Elasticsearch plugin $plugin ($build)"
rm -rf "$work"
mkdir -p "$work/api" "$work/classes" "$work/zip"

# The stable plugin API by its coordinates, as provision.sh fetches the distribution
# (the same bytes as the copies in $ES_HOME/lib).
for artifact in elasticsearch-plugin-api elasticsearch-plugin-analysis-api; do
  mvn -q -B dependency:copy -Dartifact="org.elasticsearch.plugin:$artifact:$CARAVAN_ES_VERSION" \
    -DoutputDirectory="$work/api" -Dmdep.overWriteIfNewer=true
done

# Lucene from the distribution itself: the plugin runs against exactly those jars.
# Release 21: the level Elasticsearch 9.2's own class files have (major version 65).
classpath="$work/api/*:$(printf '%s:' "$ES_HOME"/lib/lucene-core-*.jar "$ES_HOME"/lib/lucene-analysis-common-*.jar)"
find "$src/src/main/java" -name '*.java' > "$work/sources"
"$CARAVAN_ES_JAVA_HOME/bin/javac" --release 21 -Xlint:all -Werror -encoding UTF-8 \
  -cp "$classpath" -d "$work/classes" "@$work/sources"
"$CARAVAN_ES_JAVA_HOME/bin/jar" --create --file "$work/zip/$plugin.jar" -C "$work/classes" .

# named_components.json by the distribution's own scanner, the one Elasticsearch's
# Gradle build runs, so the file has the format this version reads.
"$CARAVAN_ES_JAVA_HOME/bin/java" -cp "$ES_HOME/lib/tools/plugin-cli/*:$work/api/*:$work/classes" \
  org.elasticsearch.plugin.scanner.NamedComponentScanner "$work/zip/named_components.json"
names="$(grep -o '"[a-z_]*":"caravan\.' "$work/zip/named_components.json" | cut -d'"' -f2 | LC_ALL=C sort | xargs)"
if [ "$names" != "pattern_capture uax_url_email unique" ]; then
  say "the scanner found the components [$names], not the three expected"; exit 1
fi

cat > "$work/zip/stable-plugin-descriptor.properties" <<PROPERTIES
name=$plugin
description=pattern_capture, uax_url_email and unique (of analysis-common), which the .security index needs
version=$build
elasticsearch.version=$CARAVAN_ES_VERSION
java.version=21
PROPERTIES
"$CARAVAN_ES_JAVA_HOME/bin/jar" --create --no-manifest --file "$work/$plugin.zip" -C "$work/zip" .

plugin_tool() { ES_JAVA_HOME="$CARAVAN_ES_JAVA_HOME" "$ES_HOME/bin/elasticsearch-plugin" "$@"; }
if [ -d "$ES_HOME/plugins/$plugin" ]; then plugin_tool remove --silent "$plugin"; fi
plugin_tool install --batch --silent "file://$work/$plugin.zip"
say "installed the Elasticsearch plugin $plugin ($build) into $ES_HOME"
