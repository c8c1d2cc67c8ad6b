package caravan.elasticsearch.analysis;

import java.io.IOException;
import java.util.Arrays;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.PositionIncrementAttribute;

/**
 * Drops a token whose term came before: anywhere earlier in the stream, or, with
 * onlyOnSamePosition, earlier at the same position. As analysis-common's `unique`
 * does, a dropped token's position increment is not carried over, so positions
 * match an index built on the full distribution. (Lucene's
 * RemoveDuplicatesTokenFilter covers only the same-position case.)
 */
final class UniqueTokenFilter extends TokenFilter {
    private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
    private final PositionIncrementAttribute positionIncrement = addAttribute(PositionIncrementAttribute.class);
    private final CharArraySet seen = new CharArraySet(8, false);
    private final boolean onlyOnSamePosition;

    UniqueTokenFilter(TokenStream input, boolean onlyOnSamePosition) {
        super(input);
        this.onlyOnSamePosition = onlyOnSamePosition;
    }

    @Override
    public boolean incrementToken() throws IOException {
        while (input.incrementToken()) {
            if (onlyOnSamePosition && positionIncrement.getPositionIncrement() > 0) {
                seen.clear();
            }
            // A copy: the set keeps the array it is given, and the attribute reuses its buffer.
            if (seen.add(Arrays.copyOf(term.buffer(), term.length()))) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void reset() throws IOException {
        super.reset();
        seen.clear();
    }
}
