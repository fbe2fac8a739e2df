package course;

import org.apache.spark.sql.api.java.UDF1;

/** Spark SQL: {@code explode(tokens(value))}, the words and control keys of one record. */
public class SparkTokens implements UDF1<byte[], String[]> {
  @Override
  public String[] call(byte[] value) {
    return Tokens.withControls(value);
  }
}
