import { ClassConstructor, TransformationType, TypeMetadata } from 'class-transformer';
import type { MetadataStorage as TransformerMetadata } from 'class-transformer/types/MetadataStorage';
import { getMetadataStorage, ValidationArguments, ValidationTypes, ValidatorConstraintInterface } from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata';

// class-transformer's decorator metadata lives in this module of its own; @nestjs/mapped-types reads it the same way.
const transformerMetadata = (require('class-transformer/cjs/storage') as { defaultMetadataStorage: TransformerMetadata }).defaultMetadataStorage;

type Plain = Record<string, unknown>;

/** One validation decorator of a property and the constraints class-validator runs for it. */
interface Check {
  metadata: ValidationMetadata;
  constraints: { readonly instance: ValidatorConstraintInterface }[];
}

interface PropertyPlan {
  name: string;
  /** `@IsOptional()`, `@ValidateIf()`: the checks run only when all of them hold. */
  conditions: ValidationMetadata[];
  /** `@IsDefined()`, run before the other checks. */
  defined: Check[];
  checks: Check[];
  /** `@ValidateNested()` */
  nested: boolean;
  /** `@Type()`, for a nested contract. */
  type?: TypeMetadata;
}

const VALIDATED_TYPES = new Set<string>([
  ValidationTypes.CUSTOM_VALIDATION,
  ValidationTypes.NESTED_VALIDATION,
  ValidationTypes.CONDITIONAL_VALIDATION,
  ValidationTypes.IS_DEFINED,
  ValidationTypes.WHITELIST,
]);

/**
 * A contract class's decorators read once: what `plainToInstance` and
 * `validateSync(..., { whitelist: true })` do with a payload, without their
 * per-call metadata lookups, for payloads that pass. Each round message of a
 * small model cost a worker about 0.4 ms of CPU in those two calls, most of
 * it looking up the same decorators again.
 *
 * `parse` builds the instance class-transformer would build (same class, same
 * keys in the same order, name lists copied as `parsePayload` copies them)
 * and runs class-validator's own constraint objects on it in class-validator's
 * order. It answers only for what it can vouch for: a payload of JSON values
 * (strings, numbers, booleans, null, arrays of those, nested contracts as
 * plain objects) that passes every check. Anything else, a failing check
 * included, is `undefined`: the caller then takes the libraries' own path,
 * which finds the same outcome and names each bad field. Classes using what
 * this does not model (expose/exclude/transform decorators, discriminators,
 * promise or unknown validation types) get no compiled contract at all.
 *
 * Decorators are read the first time a class is parsed; contract classes are
 * complete once their module has loaded.
 */
export class CompiledContract<T extends object> {
  private constructor(
    private readonly cls: ClassConstructor<T>,
    private readonly properties: PropertyPlan[],
    private readonly byName: Map<string, PropertyPlan>,
  ) {}

  private static readonly compiled = new Map<Function, CompiledContract<object> | null>();

  /** The compiled contract of `cls`, or null where it uses something this does not model. */
  static of<T extends object>(cls: ClassConstructor<T>): CompiledContract<T> | null {
    let c = CompiledContract.compiled.get(cls);
    if (c === undefined) {
      c = CompiledContract.compile(cls as ClassConstructor<object>);
      CompiledContract.compiled.set(cls, c);
    }
    return c as CompiledContract<T> | null;
  }

  /**
   * The valid instance, or undefined: invalid, or not a payload this can vouch for.
   * `plain` is a plain object (prototype Object.prototype); its arrays named in
   * `nameLists` (top level only, as in `parsePayload`) are copied with `slice()`
   * after the other properties.
   */
  parse(plain: Plain, nameLists: readonly string[]): T | undefined {
    try {
      const instance = this.build(plain, nameLists);
      return instance !== undefined && this.validate(instance) ? instance : undefined;
    } catch {
      return undefined;
    }
  }

  private static compile(cls: ClassConstructor<object>): CompiledContract<object> | null {
    // class-validator looks the decorators up by the instance's constructor.
    if (cls.prototype?.constructor !== cls) return null;
    if (transformerMetadata.getStrategy(cls) !== 'none' || transformerMetadata.getExposedMetadatas(cls).length || transformerMetadata.getExcludedMetadatas(cls).length) return null;
    const storage = getMetadataStorage();
    const metadatas = storage.getTargetValidationMetadatas(cls, '', false, false);
    // No decorators: class-validator reports an unknown value.
    if (!metadatas.length) return null;
    const properties: PropertyPlan[] = [];
    for (const [name, list] of Object.entries(storage.groupByPropertyName(metadatas))) {
      if (list.some((m) => !VALIDATED_TYPES.has(m.type))) return null;
      if (transformerMetadata.findTransformMetadatas(cls, name, TransformationType.PLAIN_TO_CLASS).length) return null;
      // class-transformer leaves alone a property that is an accessor without setter on the prototype.
      const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, name);
      if (descriptor && !descriptor.set) return null;
      const checksOf = (type: string): Check[] =>
        list
          .filter((m) => m.type === type)
          // validateSync skips asynchronous constraints.
          .map((metadata) => ({ metadata, constraints: storage.getTargetValidatorConstraints(metadata.constraintCls).filter((c) => !c.async) }));
      const type = transformerMetadata.findTypeMetadata(cls, name);
      // A type function that reads its arguments may choose the class per payload; a discriminator does.
      if (type && (type.options?.discriminator || typeof type.typeFunction !== 'function' || type.typeFunction.length > 0 || type.reflectedType === Map)) return null;
      properties.push({
        name,
        conditions: list.filter((m) => m.type === ValidationTypes.CONDITIONAL_VALIDATION),
        defined: checksOf(ValidationTypes.IS_DEFINED),
        checks: checksOf(ValidationTypes.CUSTOM_VALIDATION),
        nested: list.some((m) => m.type === ValidationTypes.NESTED_VALIDATION),
        type,
      });
    }
    return new CompiledContract(cls, properties, new Map(properties.map((p) => [p.name, p])));
  }

  /** What plainToInstance and the whitelist make of `plain`, or undefined for a value this does not model. `nameLists`: only at the top level. */
  private build(plain: Plain, nameLists: readonly string[]): T | undefined {
    const instance = new this.cls() as Plain;
    for (const key of Object.keys(plain)) {
      const value = plain[key];
      const property = this.byName.get(key);
      // Not in the contract: the whitelist drops it. An object there would still be walked by class-transformer first.
      if (!property) {
        if (typeof value === 'object' && value !== null) return undefined;
        continue;
      }
      if (Array.isArray(value) && nameLists.includes(key)) continue;
      let out: unknown;
      if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        out = value;
      } else if (Array.isArray(value)) {
        if (property.type || Object.getPrototypeOf(value) !== Array.prototype) return undefined;
        const copy: unknown[] = [];
        let primitives = true;
        value.forEach((v: unknown) => {
          if (!(v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) primitives = false;
          copy.push(v);
        });
        if (!primitives) return undefined;
        out = copy;
      } else if (property.type && property.nested && isPlain(value)) {
        const nestedCls = property.type.typeFunction({ newObject: instance, object: plain, property: key }) as ClassConstructor<object>;
        const nested = typeof nestedCls === 'function' ? CompiledContract.of(nestedCls) : null;
        out = nested?.build(value, []);
        if (out === undefined) return undefined;
      } else {
        return undefined;
      }
      // class-transformer skips a key whose current value is a function.
      if (instance[key] instanceof Function) return undefined;
      instance[key] = out;
    }
    for (const key of nameLists) {
      const value = plain[key];
      if (Array.isArray(value)) instance[key] = value.slice();
    }
    for (const key of Object.keys(instance)) if (!this.byName.has(key)) delete instance[key];
    return instance as T;
  }

  /** Whether class-validator finds nothing wrong with `instance` (built by `build`). */
  private validate(instance: T): boolean {
    const object = instance as Plain;
    for (const property of this.properties) {
      const value = object[property.name];
      let applies = true;
      for (const condition of property.conditions) if (!(condition.constraints[0] as (o: object, v: unknown) => boolean)(instance, value)) applies = false;
      if (!applies) {
        // class-validator would not look into (nor whitelist) a nested contract it skips.
        if (typeof value === 'object' && value !== null) return false;
        continue;
      }
      if (!passes(instance, value, property.defined) || !passes(instance, value, property.checks)) return false;
      if (property.nested && value !== undefined) {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
        const nested = CompiledContract.of(value.constructor as ClassConstructor<object>);
        if (!nested || !nested.validate(value)) return false;
      }
    }
    return true;
  }
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** class-validator's customValidations for one property, as a yes or no. A promise (an asynchronous answer) is not a yes. */
function passes(object: object, value: unknown, checks: Check[]): boolean {
  for (const { metadata, constraints } of checks) {
    if (metadata.validateIf && !metadata.validateIf(object, value)) continue;
    for (const c of constraints) {
      const args: ValidationArguments = { targetName: object.constructor ? object.constructor.name : (undefined as unknown as string), property: metadata.propertyName, object, value, constraints: metadata.constraints };
      const constraint = c.instance;
      if (!metadata.each || !(Array.isArray(value) || value instanceof Set || value instanceof Map)) {
        if (!isYes(constraint.validate(value, args))) return false;
        continue;
      }
      for (const item of Array.isArray(value) ? value : [...value.values()]) if (!isYes(constraint.validate(item, args))) return false;
    }
  }
  return true;
}

function isYes(answer: unknown): boolean {
  return !!answer && typeof (answer as { then?: unknown }).then !== 'function';
}
