package dev.idemgate.config;

import java.util.HashMap;
import java.util.Map;

/** Parses {@code api_keys}: comma-separated {@code merchant=key} pairs. */
final class ApiKeys {
  private ApiKeys() {}

  /** Returns api key to merchant id. Never puts a key into an error message. */
  static Map<String, String> parse(String text) {
    Map<String, String> byKey = new HashMap<>();
    for (String pair : text.split(",")) {
      if (pair.isBlank()) {
        continue;
      }
      int eq = pair.indexOf('=');
      String merchant = eq < 0 ? "" : pair.substring(0, eq).trim();
      String key = eq < 0 ? "" : pair.substring(eq + 1).trim();
      if (!GatewayConfig.MERCHANT_ID.matcher(merchant).matches() || !GatewayConfig.API_KEY.matcher(key).matches()) {
        throw new ConfigException("api_keys: each entry must be merchant=key (merchant: 1-64 of A-Z a-z 0-9 _ . -; key: 8 "
            + "or more visible ASCII characters, no spaces, as it is sent in Authorization: Bearer)");
      }
      String before = byKey.putIfAbsent(key, merchant);
      if (before != null && !before.equals(merchant)) {
        throw new ConfigException("api_keys: the same key is given to two merchants");
      }
    }
    return Map.copyOf(byKey);
  }
}
