import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** A use case as GET /use-cases lists it. */
export class UseCaseSummaryDto {
  @ApiProperty({ example: 'iris' }) name: string;
  @ApiProperty({ example: "Fisher's iris" }) description: string;
  @ApiProperty({ example: ['sepal-length', 'sepal-width', 'petal-length', 'petal-width'] }) features: string[];
  @ApiProperty({ example: 'class' }) label: string;
  @ApiProperty({ example: ['Iris-setosa', 'Iris-versicolor', 'Iris-virginica'] }) classes: string[];
  @ApiProperty({ enum: ['file', 'stored'], example: 'file', description: 'file: shipped or in USE_CASES_DIR; stored: added with POST /use-cases' })
  origin: 'file' | 'stored';
}

class FeatureDto {
  @ApiProperty({ example: 'age' }) name: string;
  @ApiProperty({ enum: ['number', 'categorical'], example: 'number' }) type: 'number' | 'categorical';
  @ApiPropertyOptional({ example: ['female', 'male'], description: "categorical only: the values, one model input each (one-hot)" }) values?: string[];
}

class LabelDto {
  @ApiProperty({ example: 'outcome' }) column: string;
  @ApiProperty({ example: ['no', 'yes'], description: 'at least two' }) classes: string[];
}

class MissingValuesDto {
  @ApiProperty({ enum: ['reject', 'drop_row', 'mean', 'constant'], example: 'drop_row' }) strategy: string;
  @ApiPropertyOptional({ example: 0, description: "the fill value of strategy 'constant'" }) value?: number;
  @ApiPropertyOptional({ example: ['', 'NA', 'NaN', '?'], description: 'cells that count as missing (default shown)' }) markers?: string[];
}

class NormalizationDto {
  @ApiProperty({ enum: ['standardize', 'none'], example: 'standardize' }) method: string;
  @ApiPropertyOptional({ example: [50, 120], description: 'one per number feature, or one for all' }) mean?: number[] | number;
  @ApiPropertyOptional({ example: [15, 20], description: 'one per number feature (> 0), or one for all' }) std?: number[] | number;
  @ApiPropertyOptional({ example: 'published summary statistics of the cohort' }) source?: string;
  @ApiPropertyOptional({
    enum: ['federated'],
    description: "instead of mean and std: computed at the start of each task from every site's counts, sums and sums of squares (never rows), and shipped in the trained model",
  })
  statistics?: 'federated';
}

class TrainingDefaultsDto {
  @ApiProperty({ example: 0.1 }) learning_rate: number;
  @ApiProperty({ example: 16 }) batch_size: number;
  @ApiProperty({ example: 5 }) local_epochs: number;
}

class ModelDto {
  @ApiProperty({ example: [16], description: 'hidden layer widths; [] is softmax regression' }) hidden: number[];
  @ApiProperty({ type: TrainingDefaultsDto }) defaults: TrainingDefaultsDto;
}

/**
 * A use case definition: the file format of libs/datasets/use-cases/*.json.
 * Documents the body of POST /use-cases; the body is checked by the use case
 * schema itself (libs/datasets), which names every field at fault.
 */
export class UseCaseDefinitionDto {
  @ApiProperty({ example: 'heart', description: '1-64 letters, digits, _ or -' }) name: string;
  @ApiProperty({ example: 'heart disease from two measurements' }) description: string;
  @ApiProperty({ type: FeatureDto, isArray: true, example: [{ name: 'age', type: 'number' }, { name: 'chol', type: 'number' }] }) features: FeatureDto[];
  @ApiProperty({ type: LabelDto }) label: LabelDto;
  @ApiPropertyOptional({ type: MissingValuesDto, description: "default: strategy 'reject'" }) missing_values?: MissingValuesDto;
  @ApiProperty({ type: NormalizationDto }) normalization: NormalizationDto;
  @ApiProperty({ type: ModelDto }) model: ModelDto;
}
