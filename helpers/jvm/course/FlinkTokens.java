package course;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.TableFunction;

/** Flink SQL: {@code LATERAL TABLE(tokens(`value`)) AS t(word)}, one row per word or control key. */
@FunctionHint(output = @DataTypeHint("STRING"))
public class FlinkTokens extends TableFunction<String> {
  public void eval(byte[] value) {
    for (String token : Tokens.withControls(value)) {
      collect(token);
    }
  }
}
