package caravan.elasticsearch.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.BooleanSetting;

/** `unique`: the last filter of the `.security` index's `email` analyzer. */
@NamedComponent("unique")
public final class UniqueTokenFilterFactory implements TokenFilterFactory {

    @AnalysisSettings
    public interface Settings {
        @BooleanSetting(path = "only_on_same_position", defaultValue = false)
        boolean onlyOnSamePosition();
    }

    private final boolean onlyOnSamePosition;

    @Inject
    public UniqueTokenFilterFactory(Settings settings) {
        this.onlyOnSamePosition = settings.onlyOnSamePosition();
    }

    @Override
    public TokenStream create(TokenStream input) {
        return new UniqueTokenFilter(input, onlyOnSamePosition);
    }
}
