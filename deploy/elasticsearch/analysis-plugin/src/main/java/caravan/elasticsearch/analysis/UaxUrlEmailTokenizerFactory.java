package caravan.elasticsearch.analysis;

import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenizerFactory;
import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.IntSetting;

/** `uax_url_email`: the standard tokenizer that keeps URLs and e-mail addresses whole. */
@NamedComponent("uax_url_email")
public final class UaxUrlEmailTokenizerFactory implements TokenizerFactory {

    @AnalysisSettings
    public interface Settings {
        @IntSetting(path = "max_token_length", defaultValue = StandardAnalyzer.DEFAULT_MAX_TOKEN_LENGTH)
        int maxTokenLength();
    }

    private final int maxTokenLength;

    @Inject
    public UaxUrlEmailTokenizerFactory(Settings settings) {
        this.maxTokenLength = settings.maxTokenLength();
        // Checked here, not per token stream, so that a bad value fails the index creation.
        if (maxTokenLength < 1 || maxTokenLength > UAX29URLEmailTokenizer.MAX_TOKEN_LENGTH_LIMIT) {
            throw new IllegalArgumentException("tokenizer [uax_url_email]: [max_token_length] must be between 1 and "
                + UAX29URLEmailTokenizer.MAX_TOKEN_LENGTH_LIMIT + ", got " + maxTokenLength);
        }
    }

    @Override
    public Tokenizer create() {
        UAX29URLEmailTokenizer tokenizer = new UAX29URLEmailTokenizer();
        tokenizer.setMaxTokenLength(maxTokenLength);
        return tokenizer;
    }
}
