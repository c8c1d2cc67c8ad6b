package caravan.elasticsearch.analysis;

import java.util.List;
import java.util.regex.Pattern;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.BooleanSetting;
import org.elasticsearch.plugin.settings.ListSetting;

/**
 * `pattern_capture`: one token per capture group of each pattern, as in analysis-common.
 * The `.security` index defines its `email` filter with it (four patterns,
 * `preserve_original: true`).
 */
@NamedComponent("pattern_capture")
public final class PatternCaptureTokenFilterFactory implements TokenFilterFactory {

    @AnalysisSettings
    public interface Settings {
        // Give it as a JSON array: Elasticsearch splits a lone string on commas.
        @ListSetting(path = "patterns")
        List<String> patterns();

        @BooleanSetting(path = "preserve_original", defaultValue = true)
        boolean preserveOriginal();
    }

    private final Pattern[] patterns;
    private final boolean preserveOriginal;

    @Inject
    public PatternCaptureTokenFilterFactory(Settings settings) {
        // Compiled here so that a bad regular expression fails the index creation.
        this.patterns = settings.patterns().stream().map(Pattern::compile).toArray(Pattern[]::new);
        this.preserveOriginal = settings.preserveOriginal();
    }

    @Override
    public TokenStream create(TokenStream input) {
        // Not checked in the constructor: Elasticsearch also builds every stable
        // component once with empty settings for each index, and that must not fail.
        if (patterns.length == 0) {
            throw new IllegalArgumentException("token filter [pattern_capture] needs the setting [patterns]");
        }
        return new PatternCaptureGroupTokenFilter(input, preserveOriginal, patterns);
    }
}
