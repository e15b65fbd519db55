package dev.idemgate.ship;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import tools.jackson.databind.BeanDescription;
import tools.jackson.databind.DeserializationConfig;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.deser.BeanDeserializerBuilder;
import tools.jackson.databind.deser.ValueDeserializerModifier;
import tools.jackson.databind.module.SimpleModule;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * YAML mappers for fabric8's Kubernetes model. fabric8 model classes catch every field they do not
 * declare in an {@code additionalProperties} map ({@code @JsonAnySetter}), so
 * {@code FAIL_ON_UNKNOWN_PROPERTIES} alone never fires and a typo such as
 * {@code terminationGracePeriodSecond} would load silently. {@link #strict()} removes that catch-all
 * from fabric8's typed classes, so an unknown field fails like it would in {@code kubectl apply
 * --validate=strict}. {@link GenericKubernetesResource} keeps it: holding arbitrary fields is its job.
 */
final class StrictKubernetesYaml {
  private StrictKubernetesYaml() {}

  static YAMLMapper strict() {
    SimpleModule noCatchAll = new SimpleModule("fabric8-no-additional-properties");
    noCatchAll.setDeserializerModifier(new ValueDeserializerModifier() {
      @Override
      public BeanDeserializerBuilder updateBuilder(DeserializationConfig config, BeanDescription.Supplier bean,
          BeanDeserializerBuilder builder) {
        Class<?> type = bean.getBeanClass();
        if (type.getName().startsWith("io.fabric8.") && type != GenericKubernetesResource.class) {
          builder.setAnySetter(null);
        }
        return builder;
      }
    });
    return YAMLMapper.builder()
        .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
        .addModule(noCatchAll)
        .build();
  }

  /** fabric8's own behaviour: unknown fields land in additionalProperties. */
  static YAMLMapper lenient() {
    return YAMLMapper.builder().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES).build();
  }
}
